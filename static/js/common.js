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

  async upload(url, field, blob, filename) {
    const form = new FormData();
    form.append(field, blob, filename);
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

  record(stream, seconds) {
    // Records `seconds` of the stream; resolves with the Blob.
    const types = ["video/webm;codecs=vp8,opus", "video/webm", "audio/webm;codecs=opus", "audio/webm"];
    const hasVideo = stream.getVideoTracks().length > 0;
    const mimeType = types.filter((t) => hasVideo || t.startsWith("audio")).find((t) => MediaRecorder.isTypeSupported(t)) || "";
    const rec = new MediaRecorder(stream, mimeType ? { mimeType } : {});
    const chunks = [];
    rec.ondataavailable = (e) => { if (e.data.size) chunks.push(e.data); };
    const done = new Promise((resolve) => { rec.onstop = () => resolve(new Blob(chunks, { type: rec.mimeType })); });
    rec.start(500);
    setTimeout(() => rec.stop(), seconds * 1000);
    return done;
  },
};
