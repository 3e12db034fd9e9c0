// The AlignBeam playground: a client of this server's own /v1 API, nothing more.
//
// Each prompt is sent twice to /v1/chat/completions, both streamed: the draft alone ("mode": "draft") and
// AlignBeam ("return_trace": true). The route, the candidates and the mixed prefix are drawn from the trace in
// AlignBeam's closing chunk (alignbeam_trace) and its decision (alignbeam_decision).
//
// Every text that comes from a user or a model is put on the page with textContent or as a text node, never
// parsed as HTML: a prompt or an answer holding <script> or <img onerror> shows as those characters. The page's
// Content-Security-Policy (server/ui.py) forbids inline scripts as a second line of defence.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  // the server's root, so the page also works where a proxy serves the app under a prefix
  const ROOT = location.pathname.replace(/\/ui\/?$/, "");
  const COOKIE = "alignbeam_key";
  let DOC = null; // /ui/knobs.json: the knobs, the presets, the limits
  let SENT = null; // the two request bodies last sent, for "copy as curl / Python"

  // -- small helpers ---------------------------------------------------------------------------------------
  function el(tag, props, ...children) {
    // props: class, text (textContent), dataset entries as data-*, anything else as an attribute (fixed names)
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (k === "class") e.className = v;
      else if (k === "text") e.textContent = v;
      else if (k.startsWith("data-")) e.dataset[k.slice(5)] = v;
      else e.setAttribute(k, v);
    }
    e.append(...children); // strings become text nodes
    return e;
  }

  function readKey() {
    for (const part of document.cookie.split(";")) {
      const [name, ...rest] = part.trim().split("=");
      if (name === COOKIE) return decodeURIComponent(rest.join("="));
    }
    return null;
  }

  function headers() {
    const h = { "Content-Type": "application/json" };
    const key = readKey();
    if (key) h.Authorization = "Bearer " + key;
    return h;
  }

  const pct = (x) => Math.round(x * 100) + "%";
  const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

  // -- the knobs: one control per knob a request may set, from /ui/knobs.json -------------------------------
  function control(k) {
    const id = "knob-" + k.name;
    if (k.control === "bool") return el("input", { type: "checkbox", id });
    if (k.control === "choice") {
      const s = el("select", { id });
      for (const c of k.choices) s.append(el("option", { value: c, text: c }));
      return s;
    }
    if (k.control === "list") return el("textarea", { id, rows: "2", placeholder: "one per line" });
    if (k.control === "int" || k.control === "float") {
      const input = el("input", { type: "number", id, step: k.control === "int" ? "1" : "any" });
      if (k.optional) input.placeholder = "server default (none)";
      if (k.field === "max_tokens") {
        input.min = "1";
        input.max = String(DOC.max_tokens_limit);
      }
      return input;
    }
    return el("input", { type: "text", id });
  }

  function setValue(k, input, v) {
    if (k.control === "bool") input.checked = Boolean(v);
    else if (k.control === "list") input.value = (v || []).join("\n");
    else input.value = v === null || v === undefined ? "" : String(v);
    markChanged(k);
  }

  function getValue(k) {
    const input = $("knob-" + k.name);
    if (k.control === "bool") return input.checked;
    if (k.control === "list") return input.value.split("\n").filter((s) => s !== "");
    const raw = input.value.trim();
    if (raw === "") return null;
    if (k.control === "int" || k.control === "float") return Number(raw);
    return raw;
  }

  function markChanged(k) {
    const box = $("knob-box-" + k.name);
    if (box) box.classList.toggle("changed", !same(getValue(k), k.default));
  }

  function buildKnobs() {
    const box = $("knobs");
    box.replaceChildren();
    for (const group of DOC.groups) {
      const knobs = DOC.knobs.filter((k) => k.group === group);
      if (!knobs.length) continue;
      const g = el("div", { class: "knob-group" }, el("h3", { text: group }));
      for (const k of knobs) {
        const input = control(k);
        const label =
          k.control === "bool" ? el("label", { for: input.id }, input, k.field) : el("label", { for: input.id, text: k.field });
        const help = el("p", { class: "help", text: k.help });
        const wrap = el("div", { class: "knob", id: "knob-box-" + k.name, title: k.help }, label);
        if (k.control !== "bool") wrap.append(input);
        wrap.append(help);
        g.append(wrap);
        input.addEventListener("change", () => markChanged(k));
        input.addEventListener("input", () => markChanged(k));
      }
      box.append(g);
    }
    for (const k of DOC.knobs) setValue(k, $("knob-" + k.name), k.default);
    const preset = $("preset");
    preset.replaceChildren(el("option", { value: "", text: "this server's defaults" }));
    for (const name of Object.keys(DOC.presets)) preset.append(el("option", { value: name, text: name }));
    preset.addEventListener("change", () => applyPreset(preset.value));
  }

  function applyPreset(name) {
    const values = name ? DOC.presets[name] : null;
    for (const k of DOC.knobs) {
      if (values && !(k.field in values)) continue; // a preset leaves the response length alone
      setValue(k, $("knob-" + k.name), values ? values[k.field] : k.default);
    }
  }

  // the knobs sent: those changed from the server's defaults, and max_tokens always (it sets the cost)
  function knobFields() {
    const out = {};
    for (const k of DOC.knobs) {
      const v = getValue(k);
      if (v === null || (same(v, k.default) && k.field !== "max_tokens")) continue;
      if (typeof v === "number" && !Number.isFinite(v)) throw new Error(k.field + " is not a number");
      out[k.field] = v;
    }
    return out;
  }

  function requestBodies() {
    const messages = [];
    const system = $("system").value;
    if (system.trim()) messages.push({ role: "system", content: system });
    messages.push({ role: "user", content: $("prompt").value });
    const knobs = knobFields();
    const base = { model: DOC.model, messages, stream: true };
    const draft = { ...base, mode: "draft", max_tokens: knobs.max_tokens };
    for (const f of ["ignore_eos", "stop"]) if (f in knobs) draft[f] = knobs[f]; // the draft mode's own fields
    return { draft, alignbeam: { ...base, ...knobs, return_trace: true } };
  }

  // -- streaming: server-sent events from /v1/chat/completions ----------------------------------------------
  async function streamChat(body, onDelta) {
    const res = await fetch(ROOT + "/v1/chat/completions", { method: "POST", headers: headers(), body: JSON.stringify(body) });
    if (!res.ok) {
      const err = await res.json().catch(() => null);
      const msg = (err && err.error && err.error.message) || res.statusText;
      throw new Error(res.status === 401 ? "the API key was refused (" + msg + "): forget it and enter it again" : msg);
    }
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let buf = "";
    let closing = null;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return closing;
      buf += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buf.indexOf("\n\n")) >= 0) {
        const event = buf.slice(0, cut);
        buf = buf.slice(cut + 2);
        for (const line of event.split("\n")) {
          if (!line.startsWith("data: ")) continue;
          const data = line.slice(6);
          if (data === "[DONE]") return closing;
          const obj = JSON.parse(data);
          if (obj.error) throw new Error(obj.error.message);
          const choice = obj.choices && obj.choices[0];
          if (choice && choice.delta && choice.delta.content) onDelta(choice.delta.content);
          if (choice && choice.finish_reason) closing = obj;
        }
      }
    }
  }

  async function runColumn(which, body, onClose) {
    const col = $("col-" + which);
    const text = $(which + "-text");
    const meta = $(which + "-meta");
    const t0 = performance.now();
    const secs = () => ((performance.now() - t0) / 1000).toFixed(1) + " s";
    col.dataset.state = "running";
    col.classList.add("busy");
    text.replaceChildren();
    const tick = setInterval(() => {
      meta.textContent = (text.textContent ? "streaming, " : "waiting (in line or generating), ") + secs();
    }, 250);
    try {
      const closing = await streamChat(body, (delta) => text.append(delta));
      clearInterval(tick);
      const fr = closing && closing.choices[0].finish_reason;
      meta.textContent = "done in " + secs() + ", finish_reason " + fr;
      col.dataset.state = "done";
      if (onClose) onClose(closing || {});
    } catch (e) {
      clearInterval(tick);
      meta.textContent = "failed after " + secs();
      text.replaceChildren(el("span", { class: "error", text: "Error: " + e.message }));
      col.dataset.state = "error";
    } finally {
      col.classList.remove("busy");
    }
  }

  // -- the trace: route, mixed prefix, candidates -----------------------------------------------------------
  function tokens(pieces, shares) {
    const out = [];
    pieces.forEach((piece, i) => {
      const share = shares[i] === undefined ? 0 : shares[i];
      const shown = piece === "" ? "\u2205" : piece.replace(/\n/g, "\u21b5");
      const span = el("span", { class: "tok", "data-share": String(share), title: "anchor " + pct(share) + ", draft " + pct(1 - share) }, shown);
      span.style.setProperty("--share", String(share));
      out.push(span);
    });
    return out;
  }

  function row(dl, term, ...value) {
    dl.append(el("dt", { text: term }), el("dd", {}, ...value));
  }

  function renderRoute(trace, decision) {
    const dl = $("route");
    dl.replaceChildren();
    const route = (decision && decision.route) || trace.route || "full";
    const refused = Boolean(decision && decision.refused);
    row(dl, "route", el("span", { class: "badge", id: "route-name", text: route }));
    row(dl, "why", el("span", { id: "route-reason", text: trace.route_reason || "no gate: every request gets the full method" }));
    row(dl, "P(harmful)", trace.request_risk === null || trace.request_risk === undefined ? "not classified" : trace.request_risk.toFixed(3));
    if (trace.anchor_opening !== null && trace.anchor_opening !== undefined) row(dl, "anchor's opening", trace.anchor_opening);
    row(dl, "answer", el("span", { class: refused ? "badge refused" : "badge", text: refused ? "declines" : "answers" }));
    if (trace.timings_ms && trace.timings_ms.total !== undefined) row(dl, "time", Math.round(trace.timings_ms.total) + " ms");
  }

  function renderPrefix(trace) {
    const box = $("prefix");
    const winner = trace.candidates && trace.candidates[trace.chosen];
    if (!winner || !winner.prefix_pieces || !winner.prefix_pieces.length) {
      const why =
        trace.route === "draft"
          ? "the request went to the draft alone: nothing was mixed"
          : winner && winner.source === "draft"
            ? "the winner is the draft's own unmixed answer: each candidate's prefix is in the table below"
            : "no token of the winner came from the mix";
      box.replaceChildren(el("span", { class: "muted", text: why }));
      return;
    }
    box.replaceChildren(...tokens(winner.prefix_pieces, winner.anchor_shares || []));
    if (trace.route === "draft") box.append(el("p", { class: "muted", text: "the draft alone: the anchor was not asked" }));
  }

  function renderCandidates(trace) {
    const body = $("candidates").tBodies[0];
    body.replaceChildren();
    const cands = trace.candidates || [];
    const threshold = trace.config ? trace.config.judge_threshold : null;
    const notes = [cands.length + " candidate(s)"];
    if (threshold !== null) notes.push("a score above " + threshold + " counts as unsafe");
    if (trace.refused_by_policy) notes.push("every candidate was unsafe: the answer is the refusal message");
    $("cands-note").textContent = "(" + notes.join("; ") + ")";
    cands.forEach((c, i) => {
      const score = c.score === null || c.score === undefined ? "not judged" : c.score.toFixed(2);
      const verdict = c.score === null || c.score === undefined || threshold === null ? "" : c.score > threshold ? "unsafe" : "safe";
      const tr = el(
        "tr",
        { class: i === trace.chosen ? "winner" : "" },
        el("td", { text: String(i) }),
        el("td", { text: c.source || "mixed" }),
        el("td", { class: "score " + verdict, text: score + (verdict ? " (" + verdict + ")" : "") }),
        el("td", { class: "cand-prefix" }, ...tokens(c.prefix_pieces || [], c.anchor_shares || [])),
        el("td", { class: "cand-text", text: c.text || "" }),
      );
      body.append(tr);
    });
  }

  function showTrace(closing) {
    const trace = closing.alignbeam_trace;
    if (!trace) return;
    renderRoute(trace, closing.alignbeam_decision);
    renderPrefix(trace);
    renderCandidates(trace);
    $("results").dataset.trace = "shown";
  }

  // -- copy as curl / Python --------------------------------------------------------------------------------
  function py(v, indent) {
    const pad = " ".repeat(indent + 4);
    if (v === null) return "None";
    if (v === true) return "True";
    if (v === false) return "False";
    if (Array.isArray(v)) return v.length ? "[\n" + v.map((x) => pad + py(x, indent + 4)).join(",\n") + ",\n" + " ".repeat(indent) + "]" : "[]";
    if (typeof v === "object") {
      const items = Object.entries(v).map(([k, x]) => pad + JSON.stringify(k) + ": " + py(x, indent + 4));
      return items.length ? "{\n" + items.join(",\n") + ",\n" + " ".repeat(indent) + "}" : "{}";
    }
    return JSON.stringify(v); // numbers, and strings: a JSON string literal is a Python one
  }

  function curlOf(body) {
    const auth = DOC.auth ? " \\\n  -H \"Authorization: Bearer $ALIGNBEAM_API_KEY\"" : "";
    const json = JSON.stringify(body, null, 2).replace(/'/g, "'\\''");
    return "curl -N " + location.origin + ROOT + "/v1/chat/completions \\\n  -H 'Content-Type: application/json'" + auth + " \\\n  -d '" + json + "'";
  }

  const OPENAI_FIELDS = ["model", "messages", "max_tokens", "stream", "temperature", "top_p", "seed", "stop"];

  function pythonCall(name, body) {
    const args = Object.entries(body).filter(([k]) => OPENAI_FIELDS.includes(k));
    const extra = Object.fromEntries(Object.entries(body).filter(([k]) => !OPENAI_FIELDS.includes(k)));
    const lines = args.map(([k, v]) => "    " + k + "=" + py(v, 4) + ",");
    lines.push("    extra_body=" + py(extra, 4) + ",");
    return name + " = client.chat.completions.create(\n" + lines.join("\n") + "\n)";
  }

  function pythonOf(bodies) {
    const key = DOC.auth ? 'os.environ["ALIGNBEAM_API_KEY"]' : '"none"';
    return [
      "import os\n\nfrom openai import OpenAI\n",
      'client = OpenAI(base_url="' + location.origin + ROOT + '/v1", api_key=' + key + ")",
      pythonCall("draft", bodies.draft),
      pythonCall("alignbeam", bodies.alignbeam),
      "for chunk in alignbeam:\n    if chunk.choices and chunk.choices[0].delta.content:\n" +
        '        print(chunk.choices[0].delta.content, end="", flush=True)\n' +
        '    if (chunk.model_extra or {}).get("alignbeam_trace"):\n        trace = chunk.model_extra["alignbeam_trace"]',
    ].join("\n\n");
  }

  function snippet(kind) {
    if (!SENT) return "";
    if (kind === "python") return pythonOf(SENT);
    return "# the draft alone\n" + curlOf(SENT.draft) + "\n\n# AlignBeam, with its trace\n" + curlOf(SENT.alignbeam);
  }

  async function copy(kind) {
    const text = snippet(kind);
    $("snippet").textContent = text;
    $("snippet").dataset.kind = kind;
    try {
      await navigator.clipboard.writeText(text);
      $("copy-status").textContent = "copied";
    } catch (e) {
      // no clipboard outside a secure context (http on another host): select the text for Ctrl+C instead
      const range = document.createRange();
      range.selectNodeContents($("snippet"));
      const sel = window.getSelection();
      sel.removeAllRanges();
      sel.addRange(range);
      $("copy-status").textContent = "selected: press Ctrl+C";
    }
  }

  // -- wiring -----------------------------------------------------------------------------------------------
  async function send(ev) {
    ev.preventDefault();
    let bodies;
    try {
      bodies = requestBodies();
    } catch (e) {
      $("status").textContent = e.message;
      return;
    }
    SENT = bodies;
    $("snippet").textContent = snippet("curl");
    $("snippet").classList.remove("muted");
    $("copy-curl").disabled = $("copy-python").disabled = false;
    $("send").disabled = true;
    $("results").dataset.trace = "pending";
    $("status").textContent = "sent; with models in this process the two run one after the other";
    await Promise.allSettled([runColumn("draft", bodies.draft, null), runColumn("alignbeam", bodies.alignbeam, showTrace)]);
    $("send").disabled = false;
    $("status").textContent = "";
  }

  function forgetKey() {
    document.cookie = COOKIE + "=; Max-Age=0; Path=/ui; SameSite=Strict";
    location.reload();
  }

  async function start() {
    for (const s of document.querySelectorAll(".legend-tok")) s.style.setProperty("--share", s.dataset.share);
    const res = await fetch(ROOT + "/ui/knobs.json", { headers: headers() });
    if (res.status === 401) return location.reload(); // the key went stale: the server asks for it again
    DOC = await res.json();
    $("server-model").textContent = "model " + DOC.model + ", max_tokens up to " + DOC.max_tokens_limit;
    $("forget-key").hidden = !DOC.auth;
    buildKnobs();
    $("ask-form").addEventListener("submit", send);
    $("copy-curl").addEventListener("click", () => copy("curl"));
    $("copy-python").addEventListener("click", () => copy("python"));
    $("forget-key").addEventListener("click", forgetKey);
    document.body.dataset.ready = "true";
  }

  start();
})();
