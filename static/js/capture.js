// Live capture: fetch a challenge, record the camera+microphone while showing its prompts at the
// times the server set (noting when each actually appeared), upload the recording with those times,
// and show the server's pass/fail and hint.
// The page never decides pass or fail.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const preview = $("preview"), promptEl = $("prompt"), progress = $("progress");
  const statementEl = $("statement"), result = $("result"), begin = $("begin");

  function showPrompts(plan, statement, recorder) {
    // Shows each prompt when its time has come on the recording's clock and notes when it was
    // painted (seconds into the recording): a busy machine shows prompts late, and the server judges
    // the actions against these times (within a bound). Resolves with those times when the
    // statement has had its full time, plus a short tail for its last words.
    const starts = plan.actions.map((a) => a.start).concat([plan.statement.start]);
    const shown = [];
    const statementSeconds = plan.statement.end - plan.statement.start;
    return new Promise((resolve) => {
      let done = false;
      // null when some prompt never appeared (a hidden tab): the server then uses the plan's times
      const finish = () => { done = true; clearTimeout(safety); resolve(shown.length === starts.length ? shown : null); };
      // a hidden tab gets no animation frames: the recording still ends
      const safety = setTimeout(finish, (plan.duration + plan.max_prompt_lag + plan.record_tail) * 1000);
      const frame = () => {
        if (done) return;
        const t = (performance.now() - recorder.t0) / 1000;
        const due = starts.filter((s) => t >= s).length;
        if (due > shown.length) {
          while (shown.length < due) shown.push(Math.round(t * 1000) / 1000);
          if (due > plan.actions.length) {
            promptEl.textContent = "Read the statement aloud";
            statementEl.hidden = false;
            statementEl.textContent = statement;
          } else {
            promptEl.textContent = plan.actions[due - 1].prompt;
          }
        } else if (due === 0) {
          promptEl.textContent = "Look at the camera, face in the oval…";
        }
        progress.value = Math.min(100, (100 * t) / plan.duration);
        if (shown.length === starts.length && t >= shown[starts.length - 1] + statementSeconds + plan.record_tail) {
          finish();
        } else {
          requestAnimationFrame(frame);
        }
      };
      requestAnimationFrame(frame);
    });
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
    const plan = { ...challenge.plan, max_prompt_lag: challenge.max_prompt_lag, record_tail: challenge.record_tail };
    const recorder = await Avatar.startRecorder(stream);
    const shown = await showPrompts(plan, challenge.statement, recorder);
    const blob = await recorder.stop();
    stream.getTracks().forEach((tr) => tr.stop());
    statementEl.hidden = true;
    promptEl.textContent = "Uploading…";
    try {
      const { job_id } = await Avatar.upload(`/api/enroll/sessions/${encodeURIComponent(challenge.nonce)}/recording`,
        "recording", blob, "capture.webm", shown ? { prompt_times: JSON.stringify(shown) } : {});
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
