// The on-camera reading: camera and microphone, the text as a prompter that follows the time, a
// progress bar, then upload and the server's check (POST /api/enroll/reading, a job).
"use strict";
(() => {
  const script = document.currentScript;
  const minSeconds = Number(script.dataset.minSeconds || 30);
  const maxSeconds = 75; // the recording stops by itself (the server reads at most 90 s)
  const el = (id) => document.getElementById(id);
  const button = el("record-reading"), stop = el("stop-reading"), status = el("reading-status");
  const preview = el("reading-preview"), progress = el("reading-progress");
  const sentences = Array.from(el("reading-text").querySelectorAll("span"));
  const words = sentences.map((s) => s.textContent.split(/\s+/).filter(Boolean).length);
  const total = words.reduce((a, b) => a + b, 0);
  const readSeconds = 40; // an easy pace for the whole text: where the prompter expects the reader to be

  function follow(elapsed) {
    let upTo = (elapsed / readSeconds) * total;
    sentences.forEach((s, i) => {
      s.classList.toggle("current", upTo >= 0 && upTo < words[i]);
      s.classList.toggle("read", upTo >= words[i]);
      upTo -= words[i];
    });
    progress.value = Math.min(100, (100 * elapsed) / readSeconds);
  }

  button.addEventListener("click", async () => {
    button.disabled = true;
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: true });
      preview.srcObject = stream;
      preview.hidden = false;
      await preview.play().catch(() => {});
      const recorder = await Avatar.startRecorder(stream);
      progress.hidden = false;
      stop.hidden = false;
      status.textContent = "Recording… read the text aloud, facing the camera.";
      const blob = await new Promise((resolve) => {
        const finish = () => { clearInterval(tick); clearTimeout(limit); resolve(recorder.stop()); };
        const tick = setInterval(() => {
          const elapsed = (performance.now() - recorder.t0) / 1000;
          follow(elapsed);
          stop.disabled = elapsed < minSeconds;
        }, 200);
        const limit = setTimeout(finish, maxSeconds * 1000);
        stop.onclick = finish;
      });
      stream.getTracks().forEach((t) => t.stop());
      preview.hidden = true;
      stop.hidden = true;
      status.textContent = "Checking your reading…";
      const { job_id } = await Avatar.upload("/api/enroll/reading", "video", blob, "reading.webm");
      const job = await Avatar.pollJob(job_id, () => {});
      const r = job.result || {};
      status.textContent = r.accepted ? "Your reading is kept: your talking head will be made of it. Reload to continue."
        : (r.hint || job.error || "Not accepted.");
    } catch (e) {
      status.textContent = e.message;
    } finally {
      if (stream) stream.getTracks().forEach((t) => t.stop());
      button.disabled = false;
    }
  });
})();
