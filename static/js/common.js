// Shared helpers for the capture scripts: CSRF header, job polling, recording a stream.
"use strict";
const Avatar = {
  csrf() { return document.querySelector('meta[name="csrf-token"]').content; },

  async postJSON(url) {
    const resp = await fetch(url, { method: "POST", headers: { "X-CSRFToken": Avatar.csrf(), "Accept": "application/json" } });
    const body = await resp.json().catch(() => ({}));
    if (!resp.ok) throw new Error(body.error || `HTTP ${resp.status}`);
    return body;
  },

  async upload(url, field, blob, filename, fields = {}) {
    const form = new FormData();
    form.append(field, blob, filename);
    for (const [k, v] of Object.entries(fields)) form.append(k, v);
    const resp = await fetch(url, { method: "POST", body: form, headers: { "X-CSRFToken": Avatar.csrf(), "Accept": "application/json" } });
    const body = await resp.json().catch(() => ({}));
    if (!resp.ok) throw new Error(body.error || `HTTP ${resp.status}`);
    return body;
  },

  async pollJob(id, onProgress) {
    for (;;) {
      const resp = await fetch(`/api/jobs/${id}`, { headers: { "Accept": "application/json" } });
      const job = await resp.json();
      onProgress(job);
      if (["succeeded", "failed", "cancelled"].includes(job.state)) return job;
      await new Promise((r) => setTimeout(r, 700));
    }
  },

  startRecorder(stream) {
    // Starts recording the stream. Resolves, once the recorder has started, with t0 (performance.now()
    // at that moment: second 0 of the recording) and stop(), which resolves with the Blob.
    const types = ["video/webm;codecs=vp8,opus", "video/webm", "audio/webm;codecs=opus", "audio/webm"];
    const hasVideo = stream.getVideoTracks().length > 0;
    const mimeType = types.filter((t) => hasVideo || t.startsWith("audio")).find((t) => MediaRecorder.isTypeSupported(t)) || "";
    const rec = new MediaRecorder(stream, mimeType ? { mimeType } : {});
    const chunks = [];
    rec.ondataavailable = (e) => { if (e.data.size) chunks.push(e.data); };
    const done = new Promise((resolve) => { rec.onstop = () => resolve(new Blob(chunks, { type: rec.mimeType })); });
    const started = new Promise((resolve) => { rec.onstart = () => resolve(performance.now()); });
    rec.start(500);
    return started.then((t0) => ({ t0, stop() { if (rec.state !== "inactive") rec.stop(); return done; } }));
  },

  async record(stream, seconds) {
    // Records `seconds` of the stream; resolves with the Blob.
    const recorder = await Avatar.startRecorder(stream);
    await new Promise((r) => setTimeout(r, seconds * 1000));
    return recorder.stop();
  },
};
