// Live capture: fetch a challenge, record the camera+microphone while showing its prompts at
// the times the server set, upload the recording, and show the server's pass/fail and hint.
// The page never decides pass or fail.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const preview = $("preview"), promptEl = $("prompt"), progress = $("progress");
  const statementEl = $("statement"), result = $("result"), begin = $("begin");

  function showAt(plan, t) {
    const step = plan.actions.find((a) => t >= a.start && t < a.end);
    if (t < plan.actions[0].start) return "Look at the camera, face in the oval…";
    if (step) return step.prompt;
    if (t >= plan.statement.start) return "Read the statement aloud";
    return "";
  }

  async function run() {
    begin.disabled = true;
    result.textContent = "";
    // The challenge is fetched first, so that recording starts the moment the camera opens.
    let challenge;
    try {
      challenge = await Avatar.postJSON("/api/enroll/sessions");
    } catch (e) {
      promptEl.textContent = e.message;
      begin.disabled = false;
      return;
    }
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: true });
    } catch (e) {
      promptEl.textContent = "Camera and microphone are needed. Allow them and try again.";
      begin.disabled = false;
      return;
    }
    preview.srcObject = stream;
    const plan = challenge.plan;
    const started = performance.now();
    const timer = setInterval(() => {
      const t = (performance.now() - started) / 1000;
      promptEl.textContent = showAt(plan, t);
      progress.value = Math.min(100, (100 * t) / plan.duration);
      if (t >= plan.statement.start) { statementEl.hidden = false; statementEl.textContent = challenge.statement; }
    }, 100);
    const blob = await Avatar.record(stream, plan.duration);
    clearInterval(timer);
    stream.getTracks().forEach((tr) => tr.stop());
    statementEl.hidden = true;
    promptEl.textContent = "Uploading…";
    try {
      const { job_id } = await Avatar.upload(`/api/enroll/sessions/${encodeURIComponent(challenge.nonce)}/recording`,
        "recording", blob, "capture.webm");
      const job = await Avatar.pollJob(job_id, (j) => { promptEl.textContent = `Checking… ${j.progress}%`; progress.value = j.progress; });
      const r = job.result || {};
      if (job.state === "succeeded" && r.passed) {
        promptEl.textContent = "Passed";
        begin.hidden = true;
        result.innerHTML = "";
        const a = document.createElement("a");
        a.href = "/enroll"; a.className = "button"; a.id = "capture-passed"; a.textContent = "Continue";
        result.append("Live capture passed. ", a);
      } else {
        promptEl.textContent = "Not passed";
        result.id = "result";
        result.dataset.state = "failed";
        result.textContent = (r.hint || job.error || "The capture could not be verified.") + (r.locked ? " Too many attempts: try again in 30 minutes." : "");
        begin.disabled = false;
      }
    } catch (e) {
      promptEl.textContent = "Not passed";
      result.dataset.state = "failed";
      result.textContent = e.message;
      begin.disabled = false;
    }
  }
  begin.addEventListener("click", run);
})();
