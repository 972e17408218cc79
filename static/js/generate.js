// Live progress of the clips being made; reloads the page when one finishes.
"use strict";
(() => {
  document.querySelectorAll(".job[data-job]").forEach((el) => {
    if (!/queued|running/.test(el.textContent)) return;
    Avatar.pollJob(el.dataset.job, (j) => { el.textContent = `${j.state} ${j.progress}% ${j.message || ""}`; })
      .then(() => window.location.reload())
      .catch((e) => { el.textContent = e.message; });
  });
})();
