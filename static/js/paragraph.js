// Optional paragraph reading for the voice profile (audio only), verified as the same voice.
"use strict";
(() => {
  const button = document.getElementById("record-paragraph"), status = document.getElementById("paragraph-status");
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
      status.textContent = "Recording… read the paragraph aloud.";
      const blob = await Avatar.record(stream, 15);
      stream.getTracks().forEach((t) => t.stop());
      status.textContent = "Checking your voice…";
      const { job_id } = await Avatar.upload("/api/enroll/paragraph", "audio", blob, "paragraph.webm");
      const job = await Avatar.pollJob(job_id, () => {});
      const r = job.result || {};
      status.textContent = r.accepted ? "Added. Reload to continue." : (r.hint || job.error || "Not accepted.");
    } catch (e) {
      status.textContent = e.message;
    }
    button.disabled = false;
  });
})();
