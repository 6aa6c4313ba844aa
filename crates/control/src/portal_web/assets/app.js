// The portal page: plain JavaScript, no build step. Every text from the API goes into the page
// through textContent (the `h` helper), never as HTML, so nothing an endpoint or event sends can
// run here; the CSP forbids inline script and style besides.
"use strict";

let session = null;
let eventTypes = null;

// ---- helpers ---------------------------------------------------------------------------------

function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (k === "text") el.textContent = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

const SVG = "http://www.w3.org/2000/svg";
function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, v);
  for (const c of children) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

class ApiError extends Error {
  constructor(status, body) {
    super(body.message || ("HTTP " + status));
    this.status = status;
    this.code = body.code || "";
    this.fieldViolations = body.fieldViolations || [];
  }
}

async function api(method, path, body) {
  const headers = { "Accept": "application/json" };
  if (method !== "GET") {
    headers["X-CSRF-Token"] = session ? session.csrf_token : "";
    if (body !== undefined) headers["Content-Type"] = "application/json";
  }
  const response = await fetch("/api" + path, {
    method, headers, credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 204 || response.status === 202) return null;
  const text = await response.text();
  let data = {};
  try { data = text ? JSON.parse(text) : {}; } catch (_) { data = { message: text }; }
  if (!response.ok) {
    if (response.status === 401) showSignedOut();
    throw new ApiError(response.status, data);
  }
  return data;
}

function when(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return d.toLocaleString(undefined, { dateStyle: "short", timeStyle: "medium" });
}

function enc(id) { return encodeURIComponent(id); }

function main() { return document.getElementById("main"); }

function render(...nodes) {
  const m = main();
  m.replaceChildren(...nodes.flat(Infinity).filter(n => n !== null && n !== undefined && n !== false));
}

function notice(text, kind) {
  return h("div", { class: "notice" + (kind ? " " + kind : ""), role: kind === "error" ? "alert" : "status" }, text);
}

function stateBadge(state, id) {
  return h("span", { class: "badge " + state, id: id || null }, state);
}

function canChange() { return session && !session.read_only; }

function showSignedOut() {
  render(h("h1", {}, "Signed out"),
    notice("Your session has ended. Open the webhooks page again from your account to sign in.", "error"));
}

function describeError(e) {
  if (e instanceof ApiError) return e.message + (e.code ? " (" + e.code + ")" : "");
  return String(e);
}

// Shows each field violation next to its field (`event_types[2]` → the `event_types` group,
// `basic_auth.password` → that input), the rest at the top of the form.
function showErrors(form, e) {
  for (const el of form.querySelectorAll(".field-error")) el.textContent = "";
  for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
  const general = form.querySelector(".form-error");
  general.textContent = "";
  const violations = e instanceof ApiError ? e.fieldViolations : [];
  let placed = 0;
  for (const v of violations) {
    const candidates = [v.field, v.field.replace(/\[\d+\]$/, ""), v.field.split(/[.[]/)[0]];
    const slot = candidates.map(f => form.querySelector('[data-error-for="' + CSS.escape(f) + '"]')).find(Boolean);
    if (slot) {
      slot.textContent = v.description;
      const input = form.querySelector("#" + slot.id.replace(/^err-/, "f-"));
      if (input) input.setAttribute("aria-invalid", "true");
      placed++;
    }
  }
  if (placed < violations.length || violations.length === 0) general.textContent = describeError(e);
  const first = form.querySelector("[aria-invalid=true]") || general;
  if (first.focus) first.focus();
}

function field(name, label, input, hint) {
  input.id = "f-" + name.replace(/\./g, "-");
  const errId = "err-" + name.replace(/\./g, "-");
  input.setAttribute("aria-describedby", errId);
  return h("div", { class: "field" },
    h("label", { for: input.id }, label), input,
    hint ? h("p", { class: "hint" }, hint) : null,
    h("p", { class: "field-error", id: errId, "data-error-for": name }));
}

async function loadEventTypes() {
  if (!eventTypes) eventTypes = await api("GET", "/event-types");
  return eventTypes;
}

function setNav(which) {
  for (const a of document.querySelectorAll(".top nav a")) a.classList.toggle("current", a.id === "nav-" + which);
}

// ---- views -----------------------------------------------------------------------------------

async function viewEndpoints() {
  setNav("endpoints");
  const list = await api("GET", "/endpoints");
  const header = h("div", { class: "row spread" }, h("h1", {}, "Endpoints"),
    canChange() ? h("a", { class: "button", href: "#/new", id: "new-endpoint" }, "Add endpoint") : null);
  if (list.endpoints.length === 0) {
    render(header, h("p", { id: "no-endpoints" }, "No endpoints yet. Add one to receive events."));
    return;
  }
  const rows = list.endpoints.map(e => h("tr", { "data-endpoint-id": e.id },
    h("td", {}, h("a", { href: "#/ep/" + enc(e.id) + "/deliveries", class: "endpoint-link" }, e.url),
      e.description ? h("div", { class: "hint" }, e.description) : null),
    h("td", { class: "wide" }, e.event_types.join(", ")),
    h("td", {}, stateBadge(e.state))));
  render(header, h("div", { class: "table-wrap" }, h("table", { id: "endpoints" },
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "URL"), h("th", { scope: "col", class: "wide" }, "Event types"),
      h("th", { scope: "col" }, "State"))),
    h("tbody", {}, rows))));
}

// The endpoint form, for a new endpoint (`endpoint` null) or an edit. Field names are the API's
// (the proto's), so a field violation finds its input by name.
async function endpointForm(endpoint) {
  const types = await loadEventTypes();
  const chosen = new Set(endpoint ? endpoint.event_types : []);
  const url = h("input", { type: "url", name: "url", required: true, value: endpoint ? endpoint.url : "",
    placeholder: "https://example.com/webhooks", autocomplete: "off" });
  const description = h("input", { type: "text", name: "description", value: endpoint ? endpoint.description : "" });
  // The wildcards: `*` and one `group.*` per group of the catalogue's codes (the part before the dot).
  const groups = [...new Set(types.map(t => t.code.split(".")[0]))];
  const wildcards = [["*", "every event type, including ones added later"]].concat(
    groups.map(g => [g + ".*", "every " + g + " event type, including ones added later"]));
  const typeBox = (code, desc) => h("label", {},
    h("input", { type: "checkbox", name: "event_types", value: code, checked: chosen.has(code) }),
    h("span", {}, h("strong", {}, code), " ", h("span", { class: "desc" }, desc)));
  const typeBoxes = types.map(t => typeBox(t.code, t.description + " (" + t.plan_rule + ")"));
  const typesField = h("fieldset", { class: "types", id: "f-event_types", "aria-describedby": "err-event_types" },
    h("legend", {}, "Event types"),
    h("div", { class: "wildcards", id: "wildcards" }, wildcards.map(([code, desc]) => typeBox(code, desc))),
    typeBoxes,
    h("p", { class: "field-error", id: "err-event_types", "data-error-for": "event_types" }));
  const checkedTypes = () => [...form.querySelectorAll("input[name=event_types]:checked")].map(b => b.value);
  // The filter, with a test on the first checked type's example body.
  const filter = h("textarea", { name: "filter", rows: "3", spellcheck: "false", autocomplete: "off",
    placeholder: 'data.exam.id == "exm_1c9a63d2f8"' });
  filter.value = endpoint ? endpoint.filter : "";
  const filterResult = h("p", { id: "filter-result", class: "hint", "aria-live": "polite" });
  const testFilter = h("button", { type: "button", class: "secondary", id: "test-filter", onclick: async () => {
    filterResult.replaceChildren("Testing…");
    filter.removeAttribute("aria-invalid");
    form.querySelector("#err-filter").textContent = "";
    try {
      const r = await api("POST", "/test-filter", { filter: filter.value, event_types: checkedTypes() });
      filterResult.className = r.error ? "hint failed" : r.matched ? "hint delivered" : "hint";
      filterResult.replaceChildren((r.matched ? "Matched" : "Not matched") + " on the example body of " +
        r.event_type + (r.error ? " — " + r.error : "") + ".");
    } catch (e) {
      filterResult.replaceChildren();
      const v = e instanceof ApiError ? e.fieldViolations.find(v => v.field === "filter" || v.field.startsWith("event_types")) : null;
      if (v && v.field === "filter") {
        form.querySelector("#err-filter").textContent = v.description;
        filter.setAttribute("aria-invalid", "true");
      } else filterResult.replaceChildren(h("span", { class: "failed" }, describeError(e)));
    }
  } }, "Test filter");
  const filterField = field("filter", "Filter (optional)", filter,
    "A CEL expression over the event (type, data, …); only events for which it is true are delivered. " +
    "Test runs it on the example body of the first checked type.");
  filterField.insertBefore(h("div", { class: "row" }, testFilter), filterField.querySelector(".field-error"));
  filterField.append(filterResult);
  const clearFilter = endpoint && endpoint.filter;
  // The signature scheme: chosen at creation; a later change is a rotation (Signing tab).
  const scheme = h("select", { name: "signature_scheme" },
    h("option", { value: "v1" }, "v1: HMAC-SHA256 with a shared secret"),
    h("option", { value: "v1a" }, "v1a: Ed25519, you verify with a public key"));
  const schemeField = endpoint
    ? null
    : field("signature_scheme", "Signature scheme", scheme, "v1 is what most Standard Webhooks libraries verify.");
  // Custom headers: rows of name, value, secret. A secret value is never shown: on edit it must be
  // typed again, or the save is refused.
  const headerRows = h("div", { id: "header-rows" });
  let headerCount = 0;
  const addHeader = header => {
    const n = headerCount++;
    const name = h("input", { type: "text", name: "headers[" + n + "].name", id: "f-headers-" + n + "-name",
      autocomplete: "off", value: header ? header.name : "", "aria-describedby": "err-headers-" + n + "-name" });
    const secret = h("input", { type: "checkbox", name: "headers[" + n + "].secret", id: "f-headers-" + n + "-secret",
      checked: header ? header.secret : false });
    const value = h("input", { type: "text", name: "headers[" + n + "].value", id: "f-headers-" + n + "-value",
      autocomplete: "off", value: header && !header.secret ? header.value : "",
      placeholder: header && header.secret ? "•••• (type it again to keep it)" : "",
      "aria-describedby": "err-headers-" + n + "-value" });
    secret.addEventListener("change", () => { value.type = secret.checked ? "password" : "text"; });
    if (secret.checked) value.type = "password";
    const row = h("div", { class: "header-row", "data-header-row": String(n) },
      h("div", { class: "field" }, h("label", { for: name.id }, "Name"), name,
        h("p", { class: "field-error", id: "err-headers-" + n + "-name", "data-error-for": "headers[" + n + "].name" })),
      h("div", { class: "field" }, h("label", { for: value.id }, "Value"), value,
        h("p", { class: "field-error", id: "err-headers-" + n + "-value", "data-error-for": "headers[" + n + "].value" })),
      h("label", { class: "secret-box" }, secret, " Secret"),
      h("button", { type: "button", class: "link remove-header", "aria-label": "Remove header " + (n + 1),
        onclick: () => { row.remove(); renumberHeaders(); } }, "Remove"));
    headerRows.append(row);
  };
  // The API names a header by its position in the list sent: keep the rows' names in step.
  const renumberHeaders = () => {
    [...headerRows.querySelectorAll(".header-row")].forEach((row, i) => {
      for (const part of ["name", "value"]) {
        const input = row.querySelector("input[name$='." + part + "']");
        const err = row.querySelector(".field-error[data-error-for$='." + part + "']");
        input.name = "headers[" + i + "]." + part;
        input.id = "f-headers-" + i + "-" + part;
        input.setAttribute("aria-describedby", "err-headers-" + i + "-" + part);
        input.previousSibling.setAttribute("for", input.id);
        err.id = "err-headers-" + i + "-" + part;
        err.setAttribute("data-error-for", "headers[" + i + "]." + part);
      }
      row.querySelector("input[type=checkbox]").name = "headers[" + i + "].secret";
      row.querySelector(".remove-header").setAttribute("aria-label", "Remove header " + (i + 1));
    });
  };
  for (const header of endpoint ? endpoint.headers : []) addHeader(header);
  const hadHeaders = endpoint && endpoint.headers.length > 0;
  const headersField = h("fieldset", { id: "f-headers", "aria-describedby": "err-headers" },
    h("legend", {}, "Custom headers (optional)"),
    h("p", { class: "hint" }, "Sent with every delivery. A secret value is never shown again" +
      (hadHeaders ? "; to keep a secret header, type its value again." : ".")),
    headerRows,
    h("button", { type: "button", class: "secondary", id: "add-header", onclick: () => {
      addHeader(null); renumberHeaders();
      headerRows.lastElementChild.querySelector("input").focus();
    } }, "Add header"),
    h("p", { class: "field-error", id: "err-headers", "data-error-for": "headers" }));
  const user = h("input", { type: "text", name: "basic_auth.username", autocomplete: "off",
    value: endpoint && endpoint.basic_auth_username ? endpoint.basic_auth_username : "" });
  const password = h("input", { type: "password", name: "basic_auth.password", autocomplete: "new-password" });
  const clearAuth = endpoint && endpoint.basic_auth_username
    ? h("label", {}, h("input", { type: "checkbox", name: "clear_basic_auth", id: "f-clear_basic_auth" }), " Remove basic auth")
    : null;
  const ordered = h("input", { type: "checkbox", name: "ordered", id: "f-ordered", checked: endpoint ? endpoint.ordered : false });
  const rate = h("input", { type: "number", name: "rate_limit_per_sec", min: "1", max: "10000",
    value: endpoint && endpoint.rate_limit_per_sec ? endpoint.rate_limit_per_sec : "" });
  const form = h("form", { class: "card", id: "endpoint-form", novalidate: true },
    h("p", { class: "form-error", role: "alert" }),
    field("url", "URL", url, "Where events are POSTed (HTTPS)."),
    field("description", "Description", description),
    typesField,
    filterField,
    schemeField,
    headersField,
    h("fieldset", {}, h("legend", {}, "Basic auth (optional)"),
      field("basic_auth.username", "User name", user),
      field("basic_auth.password", "Password", password, endpoint && endpoint.basic_auth_username
        ? "Leave empty to keep the current password." : null),
      clearAuth),
    h("div", { class: "field" }, h("label", {}, ordered, " Ordered delivery"),
      h("p", { class: "hint" }, "One request at a time, in order; a failing event holds back the ones after it."),
      h("p", { class: "field-error", id: "err-ordered", "data-error-for": "ordered" })),
    field("rate_limit_per_sec", "Rate limit (requests per second)", rate, "Empty: the deployment's default."),
    h("div", { class: "row" },
      h("button", { type: "submit", id: "save-endpoint" }, endpoint ? "Save changes" : "Create endpoint"),
      h("a", { class: "button secondary", href: endpoint ? "#/ep/" + enc(endpoint.id) + "/deliveries" : "#/" }, "Cancel")));
  // One request id per form: a double submit or a retry after a network error creates one endpoint.
  const requestId = "portal-" + crypto.randomUUID();
  form.addEventListener("submit", async ev => {
    ev.preventDefault();
    const button = form.querySelector("#save-endpoint");
    button.disabled = true;
    const body = {
      url: url.value.trim(),
      description: description.value,
      event_types: checkedTypes(),
      ordered: ordered.checked,
    };
    const filterText = filter.value.trim();
    if (filterText !== "") body.filter = filterText;
    else if (clearFilter) body.clear_filter = true;
    else if (!endpoint) body.filter = "";
    if (!endpoint) body.signature_scheme = scheme.value;
    const headers = [...headerRows.querySelectorAll(".header-row")].map(row => ({
      name: row.querySelector("input[name$='.name']").value.trim(),
      value: row.querySelector("input[name$='.value']").value,
      secret: row.querySelector("input[type=checkbox]").checked,
    }));
    if (headers.length > 0) body.headers = headers;
    else if (hadHeaders) body.clear_headers = true;
    const limit = rate.value.trim();
    if (limit !== "") body.rate_limit_per_sec = Number(limit);
    else if (endpoint && endpoint.rate_limit_per_sec) body.clear_rate_limit_per_sec = true;
    if (user.value !== "" || password.value !== "") body.basic_auth = { username: user.value, password: password.value };
    if (clearAuth && form.querySelector("#f-clear_basic_auth").checked) { delete body.basic_auth; body.clear_basic_auth = true; }
    try {
      if (endpoint) {
        await api("PATCH", "/endpoints/" + enc(endpoint.id), body);
        location.hash = "#/ep/" + enc(endpoint.id) + "/deliveries";
      } else {
        body.request_id = requestId;
        const created = await api("POST", "/endpoints", body);
        showCreated(created);
      }
    } catch (e) {
      showErrors(form, e);
    } finally {
      button.disabled = false;
    }
  });
  return form;
}

function showCreated(created) {
  const e = created.endpoint;
  const key = e.signing_public_keys.length > 0 ? e.signing_public_keys[0].public_key : "";
  render(h("h1", {}, "Endpoint created"),
    h("div", { class: "card" },
      e.signature_scheme === "v1a"
        ? [h("p", {}, "Public key for ", h("strong", {}, e.url), " (v1a). Verify signatures with it; it is also shown on the endpoint."),
          h("p", { class: "secret", id: "public-key" }, key)]
        : [h("p", {}, "Signing secret for ", h("strong", {}, e.url), ". It is shown this once: store it now to verify signatures."),
          h("p", { class: "secret", id: "signing-secret" }, created.signing_secret)],
      h("a", { class: "button", href: "#/ep/" + enc(e.id) + "/deliveries", id: "open-endpoint" }, "Open the endpoint")));
}

async function viewNew() {
  setNav("endpoints");
  render(h("h1", {}, "Add an endpoint"), await endpointForm(null));
  document.getElementById("f-url").focus();
}

async function viewEdit(id) {
  setNav("endpoints");
  const endpoint = await api("GET", "/endpoints/" + enc(id));
  render(h("h1", {}, "Edit endpoint"), await endpointForm(endpoint));
}

function endpointHeader(e, tab) {
  const actions = [];
  if (canChange()) {
    actions.push(h("a", { class: "button secondary", href: "#/ep/" + enc(e.id) + "/edit", id: "edit" }, "Edit"));
    if (e.state === "active") actions.push(h("button", { type: "button", class: "secondary", id: "pause", onclick: () => act(e, "pause") }, "Pause"));
    else actions.push(h("button", { type: "button", class: "secondary", id: "resume", onclick: () => act(e, "resume") }, "Resume"));
    actions.push(h("button", { type: "button", class: "danger", id: "delete", onclick: () => remove(e) }, "Delete"));
  }
  const base = "#/ep/" + enc(e.id);
  return [
    h("p", {}, h("a", { href: "#/" }, "← Endpoints")),
    h("div", { class: "row spread" }, h("h1", { id: "endpoint-url" }, e.url), h("div", { class: "row" }, actions)),
    h("dl", { class: "facts" },
      h("dt", {}, "State"), h("dd", {}, stateBadge(e.state, "state"), e.disabled_reason ? " (" + e.disabled_reason + ")" : ""),
      h("dt", {}, "Event types"), h("dd", {}, e.event_types.join(", ")),
      h("dt", {}, "Filter"), h("dd", { id: "endpoint-filter" }, e.filter ? h("code", {}, e.filter) : "none"),
      h("dt", {}, "Signatures"), h("dd", { id: "endpoint-scheme" }, e.signature_scheme),
      e.signing_public_keys.length > 0 ? [h("dt", {}, "Public keys"), h("dd", { id: "endpoint-keys" },
        e.signing_public_keys.map(k => h("div", {}, h("code", {}, k.public_key),
          k.expires_at ? " (until " + when(k.expires_at) + ")" : " (current)")))] : null,
      h("dt", {}, "Headers"), h("dd", { id: "endpoint-headers" }, e.headers.length === 0 ? "none"
        : e.headers.map(x => h("div", {}, h("code", {}, x.name + ": " + (x.secret ? "••••" : x.value)),
          x.secret ? " (secret)" : ""))),
      e.description ? [h("dt", {}, "Description"), h("dd", {}, e.description)] : null,
      h("dt", {}, "Basic auth"), h("dd", {}, e.basic_auth_username ? "user " + e.basic_auth_username : "none"),
      h("dt", {}, "Delivery"), h("dd", {}, (e.ordered ? "ordered" : "unordered") +
        (e.rate_limit_per_sec ? ", at most " + e.rate_limit_per_sec + "/s" : ""))),
    h("div", { id: "action-result", "aria-live": "polite" }),
    h("nav", { class: "tabs", "aria-label": "Endpoint views" },
      h("a", { href: base + "/deliveries", id: "tab-deliveries", class: tab === "deliveries" ? "current" : null,
        "aria-current": tab === "deliveries" ? "page" : null }, "Deliveries"),
      h("a", { href: base + "/health", id: "tab-health", class: tab === "health" ? "current" : null,
        "aria-current": tab === "health" ? "page" : null }, "Health"),
      canChange() ? h("a", { href: base + "/secret", id: "tab-secret", class: tab === "secret" ? "current" : null }, "Signing secret") : null),
  ];
}

function result(node) {
  const slot = document.getElementById("action-result");
  if (slot) slot.replaceChildren(node);
}

async function act(e, what) {
  try {
    await api("POST", "/endpoints/" + enc(e.id) + "/" + what);
    await route();
  } catch (err) { result(notice(describeError(err), "error")); }
}

async function remove(e) {
  if (!confirm("Delete the endpoint " + e.url + "? Deliveries still queued for it are dropped.")) return;
  try {
    await api("DELETE", "/endpoints/" + enc(e.id));
    location.hash = "#/";
  } catch (err) { result(notice(describeError(err), "error")); }
}

function attemptsFilter(e, types, query, onChange) {
  const outcome = h("select", { name: "outcome" }, ["", "delivered", "retrying", "failed"].map(o =>
    h("option", { value: o, selected: query.outcome === o }, o || "any")));
  const type = h("select", { name: "event_type" }, h("option", { value: "" }, "any"),
    types.map(t => h("option", { value: t.code, selected: query.event_type === t.code }, t.code)));
  const since = h("input", { type: "datetime-local", name: "since", value: query.sinceLocal || "" });
  const until = h("input", { type: "datetime-local", name: "until", value: query.untilLocal || "" });
  const form = h("form", { class: "row", id: "attempt-filter" },
    field("filter_outcome", "Outcome", outcome), field("filter_event_type", "Event type", type),
    field("filter_since", "Since", since), field("filter_until", "Until", until),
    h("button", { type: "submit", class: "secondary", id: "refresh" }, "Refresh"));
  form.addEventListener("submit", ev => {
    ev.preventDefault();
    onChange({ outcome: outcome.value, event_type: type.value, sinceLocal: since.value, untilLocal: until.value });
  });
  return form;
}

const attemptQuery = {};

async function viewDeliveries(id) {
  setNav("endpoints");
  const [e, types] = await Promise.all([api("GET", "/endpoints/" + enc(id)), loadEventTypes()]);
  const query = attemptQuery[id] || (attemptQuery[id] = {});
  const params = new URLSearchParams();
  if (query.outcome) params.set("outcome", query.outcome);
  if (query.event_type) params.set("event_type", query.event_type);
  if (query.sinceLocal) params.set("since", new Date(query.sinceLocal).toISOString());
  if (query.untilLocal) params.set("until", new Date(query.untilLocal).toISOString());
  if (query.page_token) params.set("page_token", query.page_token);
  const list = await api("GET", "/endpoints/" + enc(id) + "/attempts?" + params);
  const detail = h("div", { id: "attempt-detail" });
  const rows = list.attempts.map(a => {
    const row = h("tr", { "data-attempt-id": a.id, "data-event-id": a.event_id, "data-attempt": a.attempt, class: "attempt" },
      h("td", { class: "num" }, when(a.finished_at)),
      h("td", {}, a.event_type, a.test_send ? " (test)" : ""),
      h("td", { class: "wide" }, a.event_id),
      h("td", { class: "num" }, "#" + a.attempt),
      h("td", {}, h("span", { class: "badge " + a.outcome }, a.outcome), a.error_class ? " " + a.error_class : ""),
      h("td", { class: "num" }, a.status_code || "–"),
      h("td", { class: "num" }, a.latency_ms + " ms"),
      h("td", {}, h("button", { type: "button", class: "link details", onclick: () => showAttempt(a.id, row) }, "Details"),
        canChange() && !a.test_send ? [" ", h("button", { type: "button", class: "link resend",
          onclick: () => resend(e, a.event_id) }, "Resend")] : null));
    return row;
  });
  const table = list.attempts.length === 0
    ? h("p", { id: "no-attempts" }, "No delivery attempts match.")
    : h("div", { class: "table-wrap" }, h("table", { id: "attempts" },
      h("caption", { class: "hint" }, "Newest first"),
      h("thead", {}, h("tr", {}, ["Finished", "Event type", "Event id", "Attempt", "Outcome", "Status", "Latency", ""].map(
        (t, i) => h("th", { scope: "col", class: i === 2 ? "wide" : null }, t)))),
      h("tbody", {}, rows)));
  const paging = h("div", { class: "row" },
    query.page_token ? h("button", { type: "button", class: "secondary", id: "newest",
      onclick: () => { delete query.page_token; route(); } }, "Newest attempts") : null,
    list.next_page_token ? h("button", { type: "button", class: "secondary", id: "older",
      onclick: () => { query.page_token = list.next_page_token; route(); } }, "Older attempts") : null);
  const tools = canChange() ? toolsCard(e, types) : null;
  render(...endpointHeader(e, "deliveries"),
    attemptsFilter(e, types, query, q => { attemptQuery[id] = q; route(); }),
    table, paging, detail, tools);
}

function toolsCard(e, types) {
  // A wildcard sends its group's first type the portal receives (the API's choice for an empty type).
  const testType = h("select", { name: "test_event_type" }, e.event_types.map(t =>
    h("option", { value: t.includes("*") ? "" : t }, t.includes("*") ? t + " (its first type)" : t)));
  const testForm = h("form", { class: "card", id: "test-form" },
    h("h2", {}, "Send a test event"),
    h("p", { class: "form-error", role: "alert" }),
    field("test_event_type", "Event type", testType, "Sends the type's example body now and shows what the endpoint answered."),
    h("button", { type: "submit", id: "send-test" }, "Send test event"),
    h("div", { id: "test-result", "aria-live": "polite" }));
  testForm.addEventListener("submit", async ev => {
    ev.preventDefault();
    const out = testForm.querySelector("#test-result");
    out.replaceChildren(h("p", {}, "Sending…"));
    try {
      const r = await api("POST", "/endpoints/" + enc(e.id) + "/test", { event_type: testType.value });
      out.replaceChildren(h("p", { id: "test-outcome", class: r.outcome }, r.outcome +
        (r.status_code ? ": HTTP " + r.status_code : "") + " in " + r.latency_ms + " ms" + (r.error ? " — " + r.error : "")));
    } catch (err) { out.replaceChildren(); showErrors(testForm, err); }
  });
  const since = h("input", { type: "datetime-local", name: "since" });
  const recoverForm = h("form", { class: "card", id: "recover-form" },
    h("h2", {}, "Recover failed deliveries"),
    h("p", { class: "form-error", role: "alert" }),
    field("since", "Failed since", since, "Sends again every delivery whose final attempt failed since then."),
    h("button", { type: "submit", id: "recover" }, "Recover"),
    h("div", { id: "recover-result", "aria-live": "polite" }));
  recoverForm.addEventListener("submit", async ev => {
    ev.preventDefault();
    const out = recoverForm.querySelector("#recover-result");
    try {
      if (!since.value) throw new ApiError(400, { message: "since: is required", fieldViolations: [{ field: "since", description: "is required" }] });
      const r = await api("POST", "/endpoints/" + enc(e.id) + "/recover", { since: new Date(since.value).toISOString() });
      out.replaceChildren(notice(r.resent + " sent again" + (r.expired ? ", " + r.expired + " no longer retained" : "") + "."));
    } catch (err) { showErrors(recoverForm, err); }
  });
  return h("div", {}, testForm, recoverForm);
}

async function resend(e, eventId) {
  try {
    await api("POST", "/endpoints/" + enc(e.id) + "/resend", { event_id: eventId });
    result(notice("Event " + eventId + " sent again; the new attempt appears here when it is made."));
  } catch (err) { result(notice(describeError(err), "error")); }
}

async function showAttempt(id, row) {
  for (const r of document.querySelectorAll("tr.selected")) r.classList.remove("selected");
  row.classList.add("selected");
  const slot = document.getElementById("attempt-detail");
  try {
    const a = await api("GET", "/attempts/" + enc(id));
    const headers = Object.entries(a.response_headers);
    slot.replaceChildren(h("section", { class: "card", id: "attempt-full", "aria-label": "Attempt details" },
      h("h2", {}, "Attempt #" + a.attempt + " of " + a.event_id),
      h("dl", { class: "facts" },
        h("dt", {}, "Outcome"), h("dd", {}, a.outcome + (a.error_class ? " (" + a.error_class + ")" : "")),
        a.error ? [h("dt", {}, "Error"), h("dd", {}, a.error)] : null,
        h("dt", {}, "Status"), h("dd", {}, a.status_code || "no response"),
        h("dt", {}, "Latency"), h("dd", {}, a.latency_ms + " ms"),
        h("dt", {}, "Scheduled"), h("dd", {}, when(a.scheduled_at)),
        h("dt", {}, "Sent"), h("dd", {}, when(a.sent_at)),
        h("dt", {}, "Finished"), h("dd", {}, when(a.finished_at))),
      h("h2", {}, "Request headers"),
      h("pre", { id: "request-headers" }, a.request_headers.map(x => x.name + ": " + x.value).join("\n")),
      h("h2", {}, "Response headers"),
      h("pre", {}, headers.length ? headers.map(([k, v]) => k + ": " + v).join("\n") : "(none kept)"),
      h("h2", {}, "Response body (excerpt)"),
      h("pre", { id: "response-body" }, a.response_body || "(none kept)")));
    slot.scrollIntoView({ block: "nearest" });
  } catch (err) { slot.replaceChildren(notice(describeError(err), "error")); }
}

async function viewHealth(id) {
  setNav("endpoints");
  const [e, health] = await Promise.all([api("GET", "/endpoints/" + enc(id)), api("GET", "/endpoints/" + enc(id) + "/health")]);
  const rate = health.success_rate === null || health.success_rate === undefined ? "no attempts"
    : (health.success_rate * 100).toFixed(1) + " %";
  const facts = h("dl", { class: "facts", id: "health-facts" },
    h("dt", {}, "Success rate (24 h)"), h("dd", { id: "success-rate" }, rate),
    h("dt", {}, "Last error"), h("dd", { id: "last-error" }, health.last_error_class
      ? health.last_error_class + " at " + when(health.last_error_at) + (health.last_error ? " — " + health.last_error : "") : "none"),
    h("dt", {}, "Circuit"), h("dd", { id: "circuit" }, health.circuit_open
      ? "open since " + when(health.circuit_opened_at) + (health.circuit_reason ? " (" + health.circuit_reason + ")" : "")
      : "closed"),
    h("dt", {}, "State"), h("dd", {}, stateBadge(health.state),
      health.inactive_since ? " since " + when(health.inactive_since) : "",
      health.disabled_reason ? " (" + health.disabled_reason + ")" : ""));
  render(...endpointHeader(e, "health"), facts, h("h2", {}, "Last 24 hours"), chart(health),
    h("div", { class: "legend" }, h("span", {}, h("span", { class: "swatch ok" }), "delivered"),
      h("span", {}, h("span", { class: "swatch bad" }), "not delivered"),
      h("span", {}, h("span", { class: "swatch lat" }), "p95 latency")));
}

// Stacked bars per hour (delivered, not delivered) on the left axis, the p95 latency as a line
// on the right axis; 24 slots ending with the current hour.
function chart(health) {
  const W = 900, H = 260, L = 44, R = 56, T = 14, B = 30;
  const hour = 3600 * 1000;
  const end = Math.floor(Date.now() / hour) * hour;
  const slots = [];
  for (let i = 23; i >= 0; i--) slots.push({ start: end - i * hour, delivered: 0, failed: 0, p95: 0 });
  for (const b of health.buckets) {
    const slot = slots.find(x => x.start === Date.parse(b.start));
    if (slot) { slot.delivered = b.delivered; slot.failed = b.failed; slot.p95 = b.p95_latency_ms; }
  }
  const maxCount = Math.max(1, ...slots.map(x => x.delivered + x.failed));
  const maxLat = Math.max(1, ...slots.map(x => x.p95));
  const bw = (W - L - R) / 24;
  const y = n => T + (H - T - B) * (1 - n / maxCount);
  const yl = ms => T + (H - T - B) * (1 - ms / maxLat);
  const svg = s("svg", { viewBox: "0 0 " + W + " " + H, class: "chart", id: "health-chart", role: "img",
    "aria-label": "Attempts and p95 latency per hour over the last 24 hours" });
  for (const f of [0, 0.5, 1]) {
    svg.append(s("line", { x1: L, x2: W - R, y1: y(maxCount * f), y2: y(maxCount * f), class: "grid" }));
    svg.append(s("text", { x: L - 6, y: y(maxCount * f) + 4, "text-anchor": "end" }, Math.round(maxCount * f)));
    svg.append(s("text", { x: W - R + 6, y: yl(maxLat * f) + 4 }, Math.round(maxLat * f) + " ms"));
  }
  const points = [];
  slots.forEach((x, i) => {
    const x0 = L + i * bw + 2, w = bw - 4;
    if (x.delivered) svg.append(s("rect", { x: x0, width: w, y: y(x.delivered), height: y(0) - y(x.delivered), class: "ok" },
      s("title", {}, new Date(x.start).toLocaleTimeString() + ": " + x.delivered + " delivered")));
    if (x.failed) svg.append(s("rect", { x: x0, width: w, y: y(x.delivered + x.failed), height: y(0) - y(x.failed), class: "bad" },
      s("title", {}, new Date(x.start).toLocaleTimeString() + ": " + x.failed + " not delivered")));
    if (x.delivered + x.failed) points.push([x0 + w / 2, yl(x.p95)]);
    if (i % 4 === 0) svg.append(s("text", { x: x0, y: H - 10 }, new Date(x.start).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })));
  });
  if (points.length > 1) svg.append(s("polyline", { points: points.map(p => p.join(",")).join(" "), class: "lat" }));
  for (const p of points) svg.append(s("circle", { cx: p[0], cy: p[1], r: 3, class: "dot" }));
  return svg;
}

async function viewSecret(id) {
  setNav("endpoints");
  const e = await api("GET", "/endpoints/" + enc(id));
  const overlap = h("select", { name: "overlap_seconds" },
    [["Default (24 hours)", ""], ["No overlap", "0"], ["1 hour", "3600"], ["24 hours", "86400"], ["7 days", "604800"]]
      .map(([t, v]) => h("option", { value: v }, t)));
  const form = h("form", { class: "card", id: "rotate-form" },
    h("p", { class: "form-error", role: "alert" }),
    h("p", {}, "A new secret signs every delivery from now on. During the overlap the previous secret signs too, so your receiver can switch without losing a delivery."),
    field("overlap_seconds", "Previous secret stays valid for", overlap),
    e.signature_scheme === "v1"
      ? h("div", { class: "field" }, h("label", {}, h("input", { type: "checkbox", name: "signature_scheme", id: "f-signature_scheme" }),
          " Move to v1a (Ed25519)"),
        h("p", { class: "hint" }, "The new key is an Ed25519 key: you verify with its public key. During the overlap every request carries both signatures."),
        h("p", { class: "field-error", id: "err-signature_scheme", "data-error-for": "signature_scheme" }))
      : h("p", { class: "hint" }, "This endpoint signs with v1a: the new key's public key is shown once rotated."),
    h("button", { type: "submit", id: "rotate" }, "Rotate signing secret"),
    h("div", { id: "rotate-result" }));
  form.addEventListener("submit", async ev => {
    ev.preventDefault();
    try {
      const body = overlap.value === "" ? {} : { overlap_seconds: Number(overlap.value) };
      const toV1a = form.querySelector("#f-signature_scheme");
      if (toV1a && toV1a.checked) body.signature_scheme = "v1a";
      const r = await api("POST", "/endpoints/" + enc(e.id) + "/rotate-secret", body);
      form.querySelector("#rotate-result").replaceChildren(...(r.signature_scheme === "v1a"
        ? [h("p", {}, "New public key (v1a); the previous key stops at " + when(r.previous_expires_at) + ":"),
          h("p", { class: "secret", id: "new-public-key" }, r.public_key)]
        : [h("p", {}, "New secret (shown this once); the previous one stops at " + when(r.previous_expires_at) + ":"),
          h("p", { class: "secret", id: "new-secret" }, r.signing_secret)]));
    } catch (err) { showErrors(form, err); }
  });
  render(...endpointHeader(e, "secret"), form);
}

async function viewCatalogue() {
  setNav("catalogue");
  const types = await loadEventTypes();
  render(h("h1", {}, "Event catalogue"),
    h("p", {}, "Every event type an endpoint can receive, with the plan it needs and an example body."),
    types.map(t => h("section", { class: "card", id: "type-" + t.code.replace(/\./g, "-") },
      h("h2", {}, t.code),
      h("p", {}, t.description),
      h("p", { class: "hint" }, "Plan: " + t.plan_rule + (t.required_features.length ? "; needs " + t.required_features.join(", ") : "")),
      h("details", {}, h("summary", {}, "Example body"), h("pre", {}, JSON.stringify(t.example_body, null, 2))))));
}

// ---- routing ---------------------------------------------------------------------------------

async function route() {
  const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  try {
    if (parts[0] === "new" && canChange()) await viewNew();
    else if (parts[0] === "catalogue") await viewCatalogue();
    else if (parts[0] === "ep" && parts[1]) {
      const id = parts[1];
      if (parts[2] === "health") await viewHealth(id);
      else if (parts[2] === "edit" && canChange()) await viewEdit(id);
      else if (parts[2] === "secret" && canChange()) await viewSecret(id);
      else await viewDeliveries(id);
    } else await viewEndpoints();
  } catch (e) {
    if (!(e instanceof ApiError && e.status === 401)) render(notice(describeError(e), "error"));
  }
}

async function start() {
  try {
    session = await api("GET", "/session");
  } catch (e) {
    if (!(e instanceof ApiError && e.status === 401)) render(notice(describeError(e), "error"));
    return;
  }
  document.title = session.title;
  document.getElementById("title").textContent = session.title;
  document.getElementById("portal").textContent = session.portal_id;
  document.getElementById("read-only").hidden = !session.read_only;
  if (session.has_logo) {
    const logo = document.getElementById("logo");
    logo.src = "/assets/logo";
    logo.hidden = false;
  }
  document.getElementById("sign-out").addEventListener("click", async () => {
    try { await api("POST", "/signout"); } finally { showSignedOut(); }
  });
  window.addEventListener("hashchange", route);
  await route();
}

document.addEventListener("DOMContentLoaded", start);
