// The console: the caller's tasks as a gallery, a task's detail, and a form that submits a
// generation or an edit and shows it progressing. It calls the client API of this origin with
// the key the user pastes, kept in this tab's sessionStorage only. No framework, no build.
"use strict";
(() => {
  const KEY = "imagegw.key";
  const TERMINAL = new Set(["succeeded", "failed", "cancelled", "expired"]);
  // Files go inline as data URLs; a Lambda event holds 6 MB, so the console keeps a request's
  // images under 4 MiB (the imagegw client uploads larger ones with POST /v1/uploads).
  const INLINE_LIMIT = 4 * 1024 * 1024;
  const PAGE_SIZE = 24;
  const base = location.pathname.replace(/console\/?$/, ""); // the API sits next to the page
  const $ = (id) => document.getElementById(id);
  let nextCursor = null;
  let galleryTimer = null;
  let detailTimer = null;

  // -- small helpers -------------------------------------------------------------------------
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "class") node.className = value;
      else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value === true ? "" : value);
    }
    for (const child of children.flat()) {
      if (child !== null && child !== undefined && child !== false) {
        node.append(child instanceof Node ? child : String(child));
      }
    }
    return node;
  }
  const sleep = (seconds) => new Promise((resolve) => setTimeout(resolve, seconds * 1000));
  const clamp = (value, low, high) => Math.min(high, Math.max(low, value));
  // One time format everywhere: the local date and time to the millisecond, 24 h.
  const pad = (n, width = 2) => String(n).padStart(width, "0");
  const time = (iso) => {
    if (!iso) return "-";
    const d = new Date(iso);
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
      `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
  };
  const seconds = (s) => (s === null || s === undefined ? "-" :
    s < 60 ? `${s.toFixed(s < 10 ? 1 : 0)} s` : `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`);
  // One way for each case: a task that made no image is not billed (the gateway records 0 for
  // it, priced provider or not); otherwise the estimate, or "no price set" when its provider
  // has no price configured.
  const ENDED_WITHOUT_IMAGE = new Set(["failed", "cancelled", "expired"]);
  const money = (task) => (ENDED_WITHOUT_IMAGE.has(task.status) ? "not billed"
    : task.cost_estimate_usd === null || task.cost_estimate_usd === undefined ? "no price set"
      : `$${task.cost_estimate_usd.toFixed(3)}`);
  const asked = (task) => [task.quality && `quality ${task.quality}`, task.output_format,
    task.input_images ? `${task.input_images} input image${task.input_images > 1 ? "s" : ""}` : null]
    .filter(Boolean).join(" · ");

  // The full id, and a button that copies it (the clipboard API where the page may use it).
  function copyable(text, label) {
    const button = el("button", { type: "button", class: "copy", title: `Copy ${label}`,
      "aria-label": `Copy ${label} ${text}` }, "Copy");
    button.addEventListener("click", async (event) => {
      event.stopPropagation();
      try {
        await navigator.clipboard.writeText(text);
      } catch {
        const range = document.createRange();
        range.selectNodeContents(button.previousSibling);
        getSelection().removeAllRanges();
        getSelection().addRange(range);
        document.execCommand("copy");
      }
      button.textContent = "Copied";
      setTimeout(() => { button.textContent = "Copy"; }, 1500);
    });
    return el("span", { class: "copyable" }, el("code", { class: "id" }, text), button);
  }
  const elapsedOf = (task) => ((task.finished_at ? Date.parse(task.finished_at) : Date.now()) -
    Date.parse(task.created_at)) / 1000;

  // imagegw's polling policy (client/imagegw/polling.py): before the provider's expected
  // latency has passed, look every fifth of it (0.25-5 s) and land on it; after it, look after
  // a tenth of it (0.25-2 s), then x1.5 per look, up to 15 s.
  function nextDelay(elapsed, expected, lateLooks) {
    if (expected && elapsed < expected) {
      return Math.max(0.05, Math.min(clamp(expected / 5, 0.25, 5), expected - elapsed));
    }
    const first = expected ? clamp(expected / 10, 0.25, 2) : 0.5;
    return Math.min(15, first * 1.5 ** lateLooks);
  }

  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  async function api(path, { json, method = json === undefined ? "GET" : "POST" } = {}) {
    const headers = { Authorization: `Bearer ${sessionStorage.getItem(KEY) || ""}` };
    let body;
    if (json !== undefined) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(json);
    }
    let response;
    try {
      response = await fetch(base + path, { method, headers, body });
    } catch (error) {
      throw new ApiError(0, "connection_error", `the gateway did not answer (${error.message})`);
    }
    const text = await response.text();
    let parsed = null;
    try { parsed = text ? JSON.parse(text) : null; } catch { parsed = null; }
    if (!response.ok) {
      const error = (parsed && parsed.error) || {};
      throw new ApiError(response.status, error.code || `http_${response.status}`,
        error.message || text.slice(0, 200) || response.statusText);
    }
    return parsed;
  }

  function notice(message, isError = false) {
    const node = $("notice");
    node.textContent = message;
    node.classList.toggle("error", isError);
  }

  function reportError(error) {
    if (error instanceof ApiError && error.status === 401) {
      forgetKey();
      notice(`That key was not accepted (${error.code}). Paste another.`, true);
      return;
    }
    const code = error instanceof ApiError ? `${error.code}: ` : "";
    notice(`${code}${error.message}`, true);
  }

  // -- key -----------------------------------------------------------------------------------
  function keyInUse(inUse) {
    $("app").hidden = !inUse;
    $("forget").hidden = !inUse;
    $("key").hidden = inUse;
    $("use-key").hidden = inUse;
    document.querySelector("label[for=key]").textContent = inUse ? "API key in use" : "API key";
  }

  function forgetKey() {
    sessionStorage.removeItem(KEY);
    keyInUse(false);
    $("key").value = "";
    clearTimeout(galleryTimer);
    clearTimeout(batchesTimer);
    $("batches-panel").hidden = true;
  }

  async function start() {
    try {
      await loadGallery(true); // also checks the key
    } catch (error) {
      reportError(error);
      return;
    }
    keyInUse(true);
    notice("Key in use for this tab only. Newest tasks first; open one for its history.");
    loadProviders().catch(() => {});
    loadBatches().catch(reportError);
    const wanted = location.hash.slice(1);
    if (wanted.startsWith("tsk_")) openDetail(wanted);
  }

  // -- batches ---------------------------------------------------------------------------------
  const BATCH_FINAL = new Set(["completed", "cancelled", "expired"]);
  let batchesTimer = null;

  function batchRow(batch) {
    const c = batch.counts;
    const done = c.succeeded + c.failed + c.cancelled + c.expired + c.invalid;
    const without = done - c.succeeded;
    const cost = batch.final_cost_usd || batch.estimated_cost_usd;
    return el("tr", { "data-batch": batch.batch_id, "data-status": batch.status },
      el("td", {}, copyable(batch.batch_id, "batch id")),
      el("td", {}, statusBadge(batch.status)),
      el("td", {}, el("progress", { max: Math.max(1, c.total), value: done,
        "aria-label": `${done} of ${c.total} lines done` }), ` ${done}/${c.total}`),
      el("td", {}, `${c.succeeded} succeeded` + (without ? ` · ${without} without image` : "") +
        ` · ${c.running} running · ${c.queued} queued`),
      el("td", {}, cost ? `$${cost.toFixed(3)}` : "no price"),
      el("td", { class: "muted nowrap" }, time(batch.created_at)),
      el("td", {}, batch.results_url ? el("a", { href: batch.results_url, rel: "noreferrer",
        target: "_blank" }, "results.jsonl") : "-"));
  }

  async function loadBatches() {
    const page = await api("v1/batches?limit=10");
    $("batches-panel").hidden = page.batches.length === 0;
    $("batches").tBodies[0].replaceChildren(...page.batches.map(batchRow));
    clearTimeout(batchesTimer);
    if (page.batches.some((b) => !BATCH_FINAL.has(b.status))) {
      batchesTimer = setTimeout(() => loadBatches().catch(reportError), 3000);
    }
  }

  async function loadProviders() {
    const answer = await api("v1/providers");
    const select = $("provider");
    for (const provider of answer.providers) {
      if (!provider.enabled) continue;
      select.append(el("option", { value: provider.name }, provider.name));
    }
  }

  // -- gallery -------------------------------------------------------------------------------
  function statusBadge(status) {
    return el("span", { class: `badge ${status}` }, status);
  }

  function picture(task, className) {
    // the small preview the finaliser stored next to the image; the image until it is there
    const source = task.thumbnail_url || task.output_url;
    if (source) {
      return el("img", {
        class: className, src: source, loading: "lazy", decoding: "async",
        referrerpolicy: "no-referrer",
        alt: `Image made by task ${task.task_id} (${task.size_produced || "size unknown"})`,
      });
    }
    const words = TERMINAL.has(task.status) ? `no image: ${task.status}` : `${task.status}…`;
    return el("div", { class: "placeholder", role: "img", "aria-label": words }, words);
  }

  function card(task) {
    const sizes = `${task.size_requested || "auto"} → ${task.size_produced || "…"}`;
    return el("li", { class: "card", "data-task": task.task_id, "data-status": task.status },
      el("button", { class: "open", type: "button", "aria-label": `Open task ${task.task_id}`,
        onclick: () => openDetail(task.task_id) }, picture(task, "thumb")),
      el("div", { class: "meta" },
        statusBadge(task.status),
        el("span", { class: "prompt", title: task.prompt }, task.prompt),
        copyable(task.task_id, "task id"),
        el("span", {}, `${task.operation} · ${task.provider}${task.path ? ` (${task.path})` : ""}`),
        el("span", {}, sizes),
        asked(task) ? el("span", {}, asked(task)) : null,
        el("span", {}, `${money(task)} · ` +
          (task.duration_ms !== null ? seconds(task.duration_ms / 1000) : "running")),
        task.error ? el("span", { class: "err" }, `${task.error.code}: ${task.error.message}`) : null,
        el("span", { class: "muted" }, time(task.created_at))));
  }

  async function loadGallery(reset) {
    const gallery = $("gallery");
    gallery.setAttribute("aria-busy", "true");
    const cursor = reset ? "" : `&cursor=${encodeURIComponent(nextCursor)}`;
    try {
      const page = await api(`v1/tasks?limit=${PAGE_SIZE}${cursor}`);
      if (reset) gallery.replaceChildren();
      gallery.append(...page.tasks.map(card));
      nextCursor = page.next_cursor;
      $("more").hidden = !nextCursor;
      $("empty").hidden = gallery.children.length > 0;
      clearTimeout(galleryTimer);
      if (page.tasks.some((t) => !TERMINAL.has(t.status))) {
        galleryTimer = setTimeout(() => loadGallery(true).catch(reportError), 3000);
      }
    } finally {
      gallery.setAttribute("aria-busy", "false");
    }
  }

  // -- one task: live progress and detail -----------------------------------------------------
  function steps(task) {
    const lines = task.history.map((change) =>
      el("li", {}, `${time(change.at)}  ${change.status} (${change.by})`));
    for (const attempt of task.attempts) {
      if (attempt.outcome === "failed" && attempt.error) {
        lines.push(el("li", { class: "err" },
          `${time(attempt.at)}  ${attempt.provider} failed: ${attempt.error.code}`));
      }
    }
    return el("ol", { class: "steps", "aria-label": "Status changes" }, lines);
  }

  function liveCard(task) {
    const elapsed = elapsedOf(task);
    const expected = task.expected_seconds;
    const done = TERMINAL.has(task.status);
    const output = task.outputs[0];
    return el("div", { class: "card", "data-task": task.task_id, "data-status": task.status },
      el("div", { class: "meta" },
        el("strong", {}, "New task"), copyable(task.task_id, "task id"),
        statusBadge(task.status),
        el("span", {}, `${task.provider}${task.path ? ` (${task.path})` : ""} · ` +
          `${seconds(elapsed)} elapsed` + (expected ? `, typically ${seconds(expected)}` : "")),
        done ? null : el("progress", expected ? { max: expected, value: Math.min(elapsed, expected) }
          : {}, "working"),
        steps(task),
        task.error ? el("span", { class: "err" }, `${task.error.code}: ${task.error.message}`) : null),
      output ? el("button", { class: "open", type: "button", "aria-label": `Open task ${task.task_id}`,
        onclick: () => openDetail(task.task_id) },
        el("img", { class: "result", src: output.url, referrerpolicy: "no-referrer",
          alt: `Image made by task ${task.task_id} (${output.width}x${output.height})` })) : null);
  }

  async function track(task) {
    const live = $("live");
    let step = 0;
    live.replaceChildren(liveCard(task));
    while (!TERMINAL.has(task.status)) {
      const since = task.submitted_at || task.created_at;
      const elapsed = Math.max(0, (Date.now() - Date.parse(since)) / 1000);
      const delay = nextDelay(elapsed, task.expected_seconds, step);
      if (!(task.expected_seconds && elapsed < task.expected_seconds)) step += 1;
      await sleep(delay);
      task = await api(`v1/tasks/${task.task_id}`);
      live.replaceChildren(liveCard(task));
    }
    await loadGallery(true);
    return task;
  }

  function row(label, value) {
    return el("tr", {}, el("th", { scope: "row" }, label), el("td", {}, value ?? "-"));
  }

  function detailBody(task) {
    const output = task.outputs[0];
    const facts = el("table", {}, el("caption", {}, "Task"),
      row("task id", copyable(task.task_id, "task id")),
      row("status", statusBadge(task.status)),
      row("prompt", el("span", { class: "prompt-full" }, task.prompt)),
      row("operation", task.operation + (task.input_images ?
        ` (${task.input_images} input image${task.input_images > 1 ? "s" : ""})` : "")),
      row("quality", task.quality),
      row("format", task.output_format),
      row("background", task.background),
      row("provider", `${task.provider}${task.path ? ` (${task.path})` : ""}`),
      row("finished by", task.finished_by),
      row("model", task.model),
      row("size asked", task.size_requested),
      row("size sent", task.size_sent),
      row("size made", task.size_produced),
      row("cost estimate", money(task)),
      row("created", time(task.created_at)),
      row("finished", task.finished_at ? time(task.finished_at) : null),
      row("took", task.duration_ms !== null ? seconds(task.duration_ms / 1000) : "still open"),
      row("typical", task.expected_seconds ? seconds(task.expected_seconds) : null),
      output ? row("image", `${output.content_type}, ${output.bytes} bytes`) : null,
      output ? row("sha256", el("code", { class: "hash" }, output.sha256)) : null,
      task.error ? row("error", el("span", { class: "err" },
        `${task.error.code}: ${task.error.message}`)) : null,
      ...Object.entries(task.metadata || {}).map(([k, v]) => row(`metadata ${k}`, v)));
    const changes = el("table", {}, el("caption", {}, "History"),
      el("tr", {}, el("th", { scope: "col" }, "status"), el("th", { scope: "col" }, "at"),
        el("th", { scope: "col" }, "by")),
      task.history.map((c) => el("tr", {}, el("td", {}, c.status), el("td", {}, time(c.at)),
        el("td", {}, c.by))));
    const attempts = el("table", { class: "attempts" }, el("caption", {}, "Provider attempts"),
      el("tr", {}, ...["provider", "provider task", "started", "ended", "outcome", "error"].map(
        (h) => el("th", { scope: "col" }, h))),
      task.attempts.map((a) => el("tr", {}, el("td", { class: "nowrap" }, a.provider),
        el("td", { class: "tid", title: a.provider_task_id || "" }, a.provider_task_id || "-"),
        el("td", { class: "nowrap" }, time(a.at)),
        el("td", { class: "nowrap" }, a.finished_at ? time(a.finished_at) : "-"),
        el("td", { class: "nowrap" }, a.outcome),
        el("td", {}, a.error ? [el("code", { class: "nowrap" }, a.error.code), `: ${a.error.message}`]
          : "-"))));
    const deliveries = el("table", { class: "deliveries" },
      el("caption", {}, `Webhook deliveries (${task.deliveries.length})`),
      el("tr", {}, ...["event", "attempt", "at", "outcome", "HTTP", "error", "next try"].map(
        (h) => el("th", { scope: "col" }, h))),
      task.deliveries.map((d) => el("tr", { class: d.outcome === "delivered" ? null : "err" },
        el("td", { class: "nowrap" }, d.event), el("td", {}, String(d.attempt)),
        el("td", { class: "nowrap" }, time(d.at)), el("td", { class: "nowrap" }, d.outcome),
        el("td", {}, d.http_status ?? "-"), el("td", {}, d.error || "-"),
        el("td", { class: "nowrap" }, d.next_attempt_at ? time(d.next_attempt_at) : "-"))));
    const inputs = task.inputs.length ? el("figure", { class: "inputs" },
      el("figcaption", {}, `Inputs (${task.input_images} image${task.input_images === 1 ? "" : "s"}` +
        `${task.inputs.some((i) => i.role === "mask") ? " and a mask" : ""})`),
      task.inputs.map((input, index) => (input.url
        ? el("img", { src: input.url, referrerpolicy: "no-referrer", loading: "lazy",
          class: `input ${input.role}`, alt: input.role === "mask" ? "The mask of the edit"
            : `Input image ${index + 1} of the edit` })
        : el("span", { class: "muted" }, `${input.role}: not in the gateway's bucket`)))) : null;
    const actions = el("div", { class: "actions" },
      output ? el("a", { href: output.url, rel: "noreferrer", target: "_blank" }, "Open the image")
        : null,
      TERMINAL.has(task.status) ? null : el("button", { type: "button", onclick: () => cancel(task) },
        "Cancel task"),
      el("span", { class: "muted" }, "From a terminal: ",
        el("code", { class: "command" }, `imagegw show ${task.task_id}`)));
    const image = output ? el("div", { class: "outputs" }, task.outputs.map((o, index) =>
      el("img", { src: o.url, referrerpolicy: "no-referrer",
        alt: `Image ${index + 1} of ${task.outputs.length} made by task ${task.task_id} ` +
          `(${o.width}x${o.height})` })))
      : picture({ ...task, output_url: null }, "thumb");
    return el("div", { class: "detail-grid" }, el("div", {}, image, actions, inputs),
      el("div", {}, facts, changes),
      el("div", { class: "wide" }, task.attempts.length ? attempts : null,
        task.deliveries.length ? deliveries : null));
  }

  async function openDetail(taskId) {
    const dialog = $("detail");
    clearTimeout(detailTimer);
    try {
      const task = await api(`v1/tasks/${encodeURIComponent(taskId)}`);
      $("detail-h").textContent = task.task_id;
      $("detail-body").replaceChildren(detailBody(task));
      if (!dialog.open) dialog.showModal();
      history.replaceState(null, "", `#${task.task_id}`);
      if (!TERMINAL.has(task.status)) {
        detailTimer = setTimeout(() => dialog.open && openDetail(taskId), 2000);
      }
    } catch (error) {
      reportError(error);
    }
  }

  async function cancel(task) {
    try {
      await api(`v1/tasks/${task.task_id}/cancel`, { method: "POST" });
    } catch (error) {
      reportError(error);
    }
    await openDetail(task.task_id);
    await loadGallery(true).catch(reportError);
  }

  // -- the form ------------------------------------------------------------------------------
  function dataUrl(file) {
    return new Promise((resolve, reject) => {
      const reader = new FileReader();
      reader.onload = () => resolve(reader.result);
      reader.onerror = () => reject(reader.error);
      reader.readAsDataURL(file);
    });
  }

  async function requestBody(form) {
    const body = { prompt: form.prompt.value.trim() };
    const size = form.size.value;
    if (size.includes("@")) [body.aspect_ratio, body.resolution] = size.split("@");
    else if (size !== "auto") body.size = size;
    if (form.quality.value !== "auto") body.quality = form.quality.value;
    if (form.provider.value) body.provider = form.provider.value;
    const images = [...form.images.files];
    const mask = form.mask.files[0];
    const total = [...images, mask].filter(Boolean).reduce((sum, f) => sum + f.size, 0);
    if (total * 4 / 3 > INLINE_LIMIT) {
      throw new ApiError(400, "too_large_for_the_console",
        "these files are over 4 MiB together: use imagegw edit, which uploads them first");
    }
    if (images.length) body.images = await Promise.all(images.map(dataUrl));
    if (mask) body.mask = await dataUrl(mask);
    return body;
  }

  async function submit(event) {
    event.preventDefault();
    const form = event.target;
    const button = $("submit");
    button.disabled = true;
    try {
      const task = await api("v1/images", { json: await requestBody(form) });
      notice(`Submitted ${task.task_id}.`);
      await track(task);
    } catch (error) {
      reportError(error);
    } finally {
      button.disabled = false;
    }
  }

  // -- wiring --------------------------------------------------------------------------------
  document.addEventListener("DOMContentLoaded", () => {
    $("key-form").addEventListener("submit", (event) => {
      event.preventDefault();
      sessionStorage.setItem(KEY, $("key").value.trim());
      $("key").value = "";
      start();
    });
    $("forget").addEventListener("click", () => {
      forgetKey();
      notice("Key forgotten. Paste an API key to see your tasks.");
    });
    $("new-task").addEventListener("submit", submit);
    $("images").addEventListener("change", (event) => {
      $("submit").textContent = event.target.files.length ? "Edit" : "Generate";
    });
    $("refresh").addEventListener("click", () => loadGallery(true).catch(reportError));
    $("more").addEventListener("click", () => loadGallery(false).catch(reportError));
    $("close").addEventListener("click", () => $("detail").close());
    $("detail").addEventListener("close", () => {
      clearTimeout(detailTimer);
      history.replaceState(null, "", location.pathname);
    });
    if (sessionStorage.getItem(KEY)) start();
  });
})();
