// assay leaderboard: sorting, search and filters on index.html; the
// per-document drill-down on variant pages. Everything from the data is put
// into the page with textContent, never as markup.
"use strict";
(function () {
  const $ = (sel, root) => (root || document).querySelector(sel);
  const $$ = (sel, root) => Array.from((root || document).querySelectorAll(sel));

  // ---- index.html -------------------------------------------------------
  const board = $("#board");
  if (board) {
    const body = board.tBodies[0];
    const rows = Array.from(body.rows);
    const headers = $$("thead th", board);
    const controls = { q: $("#q"), relation: $("#relation"), base: $("#base"), precision: $("#precision") };
    const state = { sort: null, dir: "asc" };

    const cellKey = (row, col, type) => {
      const v = row.cells[col].dataset.v || "";
      if (type === "num") { return v === "" ? null : Number(v); }
      return v === "" ? null : v.toLowerCase();
    };
    const sortBy = (col, dir) => {
      const type = headers[col].dataset.type;
      const sign = dir === "desc" ? -1 : 1;
      const sorted = rows.slice().sort((a, b) => {
        const x = cellKey(a, col, type), y = cellKey(b, col, type);
        if (x === null && y === null) { return 0; }
        if (x === null) { return 1; }   // empty cells last, either way
        if (y === null) { return -1; }
        return (x < y ? -1 : x > y ? 1 : 0) * sign;
      });
      for (const r of sorted) { body.appendChild(r); }
      headers.forEach((h, i) => h.setAttribute("aria-sort", i === col ? (dir === "asc" ? "ascending" : "descending") : "none"));
      state.sort = col; state.dir = dir;
    };
    const filter = () => {
      const q = controls.q.value.trim().toLowerCase();
      const want = { relation: controls.relation.value, base: controls.base.value, precision: controls.precision.value };
      let shown = 0;
      const visible = new Set();
      for (const r of rows) {
        const ok = (!q || r.dataset.search.includes(q)) &&
          (!want.relation || r.dataset.relation === want.relation) &&
          (!want.base || r.dataset.base === want.base) &&
          (!want.precision || r.dataset.precision === want.precision);
        r.hidden = !ok;
        if (ok) { shown += 1; visible.add(r.dataset.variant); }
      }
      $("#shown").textContent = shown + " of " + rows.length;
      for (const p of $$(".point")) { p.classList.toggle("dim", !visible.has(p.dataset.variant)); }
    };
    const saveState = () => {
      const params = new URLSearchParams();
      for (const [k, el] of Object.entries(controls)) { if (el.value) { params.set(k, el.value); } }
      if (state.sort !== null) { params.set("sort", String(state.sort)); params.set("dir", state.dir); }
      const hash = params.toString();
      try { history.replaceState(null, "", hash ? "#" + hash : location.pathname); } catch (e) { location.hash = hash; }
    };

    headers.forEach((h, i) => {
      h.tabIndex = 0;
      const go = () => {
        // Numbers start high-to-low (best first), names A-Z.
        const first = h.dataset.type === "num" && i > 1 ? "desc" : "asc";
        sortBy(i, state.sort === i ? (state.dir === "asc" ? "desc" : "asc") : first);
        saveState();
      };
      h.addEventListener("click", go);
      h.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); go(); } });
    });
    for (const el of Object.values(controls)) {
      el.addEventListener("input", () => { filter(); saveState(); });
    }
    // A link with #q=...&sort=... opens the same view.
    const params = new URLSearchParams(location.hash.slice(1));
    for (const [k, el] of Object.entries(controls)) { if (params.has(k)) { el.value = params.get(k); } }
    if (params.has("sort")) {
      const col = Number(params.get("sort"));
      if (col >= 0 && col < headers.length) { sortBy(col, params.get("dir") === "desc" ? "desc" : "asc"); }
    }
    filter();

    for (const b of $$(".plot-switch button")) {
      b.addEventListener("click", () => {
        for (const other of $$(".plot-switch button")) { other.classList.toggle("on", other === b); }
        for (const fig of $$("figure.plot")) { fig.hidden = fig.id !== b.dataset.plot; }
      });
    }
  }

  // ---- variant pages: the per-document drill-down ------------------------
  const section = $("#documents");
  if (!section) { return; }
  const runs = {};      // run file -> its documents
  const prompts = {};   // prompt file -> {doc id: [prompt, choices, target]}
  let pending = null;   // the file whose script is loading
  window.assay = {
    documents: (data) => { runs[pending] = data; },
    prompts: (name, table) => { prompts[name] = table; },
  };
  const load = (src) => new Promise((resolve, reject) => {
    const s = document.createElement("script");
    s.src = src;
    s.onload = () => resolve();
    s.onerror = () => reject(new Error("cannot load " + src));
    document.head.appendChild(s);
  });
  // Scripts load one at a time so each documents() call knows its file.
  let queue = Promise.resolve();
  const loadRun = (src) => {
    queue = queue.then(() => {
      if (!src || runs[src]) { return; }
      pending = src;
      return load(src);
    });
    return queue;
  };
  const loadPrompts = (dir, file) => {
    queue = queue.then(() => (prompts[file] ? undefined : load(dir + file)));
    return queue;
  };

  const PAGE = 200;
  let limit = PAGE;
  const table = $("#doc-table");
  const shownText = $("#doc-shown");
  const mine = section.dataset.documents;
  const theirs = section.dataset.baseDocuments;
  const docsDir = mine.slice(0, mine.lastIndexOf("/docs/") + 6);

  const text = (tag, value, cls) => {
    const el = document.createElement(tag);
    el.textContent = value;
    if (cls) { el.className = cls; }
    return el;
  };
  const verdict = (v) => (v === null || v === undefined ? "" : v === 1 ? "yes" : v === 0 ? "no" : String(v));

  const render = async () => {
    const task = $("#doc-task").value;
    try {
      await loadRun(mine);
      await loadRun(theirs);
    } catch (e) { shownText.textContent = e.message; return; }
    const run = runs[mine] && runs[mine].tasks[task];
    if (!run) { shownText.textContent = "no documents recorded for " + task; return; }
    try { await loadPrompts(docsDir, run.prompts); } catch (e) { shownText.textContent = e.message; return; }
    const table_ = prompts[run.prompts] || {};
    const base = theirs && runs[theirs] && runs[theirs].tasks[task];
    const baseValue = new Map(base ? base.rows.map((r) => [r[0], r[1]]) : []);
    const how = $("#doc-filter").value;
    const q = $("#doc-q").value.trim().toLowerCase();
    const tbody = table.tBodies[0];
    tbody.textContent = "";
    let matched = 0;
    for (const [docId, value, response] of run.rows) {
      const p = table_[docId] || ["(prompt not recorded)", [], ""];
      const [prompt, choices, target] = p;
      const other = baseValue.get(docId);
      if (how === "right" && value !== 1) { continue; }
      if (how === "wrong" && value !== 0) { continue; }
      if (how === "changed" && (other === undefined || other === value)) { continue; }
      const targetText = choices.length > 1 && /^\d+$/.test(target) && choices[Number(target)] !== undefined ? choices[Number(target)] : target;
      const responseText = typeof response === "number" && choices[response] !== undefined ? choices[response] : String(response);
      if (q && !(prompt + "\n" + targetText + "\n" + responseText).toLowerCase().includes(q)) { continue; }
      matched += 1;
      if (matched > limit) { continue; }
      const tr = document.createElement("tr");
      tr.id = "doc-" + task + "-" + docId;
      tr.appendChild(text("td", String(docId)));
      tr.appendChild(text("td", prompt, "prompt"));
      tr.appendChild(text("td", targetText));
      tr.appendChild(text("td", responseText));
      tr.appendChild(text("td", verdict(value), value === 1 ? "right" : value === 0 ? "wrong" : ""));
      if (theirs) { tr.appendChild(text("td", verdict(other))); }
      tbody.appendChild(tr);
    }
    table.hidden = false;
    // What the table shows now, for readers and tests alike.
    table.dataset.view = [task, how, q].join("|");
    shownText.textContent = Math.min(matched, limit) + " of " + matched + " document(s)";
    $("#doc-more").hidden = matched <= limit;
  };
  $("#doc-load").addEventListener("click", () => { limit = PAGE; render(); });
  // A link to #doc-TASK-ID (the gate's reports make them) opens that document.
  const target = decodeURIComponent(location.hash.slice(1));
  const wanted = Array.from($("#doc-task").options).find((o) => target.startsWith("doc-" + o.value + "-"));
  if (wanted) {
    $("#doc-task").value = wanted.value;
    limit = Infinity;
    render().then(() => {
      const row = document.getElementById(target);
      if (row) { row.classList.add("target"); row.scrollIntoView({ block: "center" }); }
    });
  }
  $("#doc-more").addEventListener("click", () => { limit += PAGE; render(); });
  for (const id of ["#doc-task", "#doc-filter", "#doc-q"]) {
    $(id).addEventListener("input", () => { if (!table.hidden) { limit = PAGE; render(); } });
  }
})();
