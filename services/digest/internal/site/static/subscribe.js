// The Subscribe box: calls paperroute's SubscriberService.Subscribe over the
// Connect protocol (JSON over HTTP POST, no library needed) and shows the
// answer. Without JavaScript the page shows the subscriber's own form instead.
//
// Errors a form must handle (docs/frontend.md):
//   invalid_argument    google.rpc.BadRequest field violations: shown next to
//                       the field they name ("email", "topics[2]", ...).
//   resource_exhausted  google.rpc.RetryInfo retry_delay: "try again in ...".
//   anything else       a general "please try again" line.

const form = document.getElementById("subscribe-form");
if (form) {
  setUp(form);
}

function setUp(form) {
  form.hidden = false;
  fillTimezones(form.elements.namedItem("timezone"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    submit(form);
  });
}

// fillTimezones lists the browser's time zones and preselects its own.
function fillTimezones(select) {
  let own = "UTC";
  try {
    own = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  } catch {
    // keep UTC
  }
  let zones = [];
  try {
    zones = Intl.supportedValuesOf("timeZone");
  } catch {
    zones = [];
  }
  if (!zones.includes("UTC")) zones.unshift("UTC");
  if (!zones.includes(own)) zones.unshift(own);
  select.replaceChildren(...zones.map((z) => new Option(z, z, false, z === own)));
  select.value = own;
}

// Where each request field's violations are shown; the rest go on top.
const errorSlots = {
  email: "sub-email-error",
  topics: "sub-topics-error",
  keywords: "sub-topics-error",
  frequency: "sub-frequency-error",
  weekly_day: "sub-frequency-error",
  delivery_hour: "sub-hour-error",
  timezone: "sub-timezone-error",
  consent_text_version: "sub-consent-error",
};

function clearErrors(form) {
  for (const el of form.querySelectorAll(".error, .problem")) {
    el.hidden = true;
    el.textContent = "";
  }
  for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
  const status = document.getElementById("sub-status");
  status.textContent = "";
  status.className = "status";
}

async function submit(form) {
  clearErrors(form);
  const button = document.getElementById("sub-submit");
  const status = document.getElementById("sub-status");
  const data = new FormData(form);
  const request = {
    email: String(data.get("email") || "").trim(),
    consentTextVersion: form.dataset.consentVersion,
    topics: data.getAll("topics").map(String),
    frequency: String(data.get("frequency") || "FREQUENCY_DAILY"),
    deliveryHour: Number(data.get("delivery_hour")),
    timezone: String(data.get("timezone") || ""),
    locale: navigator.language || "",
  };
  if (request.frequency === "FREQUENCY_WEEKLY") request.weeklyDay = String(data.get("weekly_day"));
  button.disabled = true;
  status.textContent = "Sending…";
  try {
    const response = await fetch(form.dataset.endpoint, {
      method: "POST",
      headers: { "Content-Type": "application/json", "Connect-Protocol-Version": "1" },
      body: JSON.stringify(request),
    });
    const body = await response.json().catch(() => ({}));
    if (response.ok) {
      status.textContent = body.message || "Check your inbox to confirm your subscription.";
      status.className = "status ok";
      form.elements.namedItem("email").value = "";
      return;
    }
    status.textContent = "";
    showError(form, body);
  } catch {
    status.textContent = "";
    problem("The subscription service could not be reached. Please check your connection and try again.");
  } finally {
    button.disabled = false;
  }
}

// showError shows a Connect error: {code, message, details: [{type, value}]}.
function showError(form, err) {
  const details = Array.isArray(err.details) ? err.details : [];
  if (err.code === "invalid_argument") {
    const violations = details
      .filter((d) => d.type === "google.rpc.BadRequest")
      .flatMap((d) => decodeBadRequest(base64Bytes(d.value)));
    let shown = 0;
    for (const v of violations) {
      const field = v.field.replace(/[[.].*$/, "");
      const slot = errorSlots[field] && document.getElementById(errorSlots[field]);
      if (!slot) continue;
      slot.textContent = (slot.textContent ? slot.textContent + " " : "") + sentence(field, v.description);
      slot.hidden = false;
      const input = form.querySelector(`[aria-describedby~="${slot.id}"]`) || form.elements.namedItem(field);
      if (input && input.setAttribute) input.setAttribute("aria-invalid", "true");
      if (shown++ === 0 && input && input.focus) input.focus();
    }
    if (shown === 0) problem(err.message || "Please check the form.");
    else problem("Please correct the marked fields.");
    return;
  }
  if (err.code === "resource_exhausted") {
    const retry = details
      .filter((d) => d.type === "google.rpc.RetryInfo")
      .map((d) => decodeRetryInfo(base64Bytes(d.value)))[0];
    problem("Too many sign-ups just now. Please try again " + waitText(retry) + ".");
    return;
  }
  if (err.code === "unavailable") {
    problem("The mail service is busy right now. Nothing was changed; please try again shortly.");
    return;
  }
  problem("Something went wrong. Please try again in a moment.");
}

function problem(text) {
  const el = document.getElementById("sub-problem");
  el.textContent = text;
  el.hidden = false;
}

const fieldNames = {
  email: "The email address",
  topics: "A topic",
  keywords: "A keyword",
  frequency: "The frequency",
  weekly_day: "The day of the week",
  delivery_hour: "The delivery hour",
  timezone: "The time zone",
  consent_text_version: "The consent text",
};

function sentence(field, description) {
  return (fieldNames[field] || field) + " " + description.replace(/\.?$/, ".");
}

function waitText(seconds) {
  if (!(seconds > 0)) return "in a little while";
  if (seconds <= 60) return "in a minute";
  if (seconds < 90 * 60) return "in " + Math.ceil(seconds / 60) + " minutes";
  if (seconds < 86400) return "in about " + Math.round(seconds / 3600) + " hours";
  return "tomorrow";
}

// --- The two error details, decoded from their protobuf bytes. ---
// Connect sends each detail as {type, value: base64 of the message}; these
// few lines read the two messages a form needs without a protobuf library.

function base64Bytes(s) {
  const b64 = String(s || "").replace(/-/g, "+").replace(/_/g, "/");
  const bin = atob(b64 + "===".slice((b64.length + 3) % 4));
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

// fields yields [fieldNumber, value] of a protobuf message: a number for
// varints, bytes for length-delimited fields.
function* fields(bytes) {
  let i = 0;
  const varint = () => {
    let n = 0;
    let mul = 1;
    for (;;) {
      const b = bytes[i++];
      if (b === undefined) throw new Error("truncated");
      n += (b & 0x7f) * mul;
      if (b < 0x80) return n;
      mul *= 128;
    }
  };
  while (i < bytes.length) {
    const key = varint();
    const wire = key & 7;
    const num = Math.floor(key / 8);
    if (wire === 0) yield [num, varint()];
    else if (wire === 2) {
      const len = varint();
      yield [num, bytes.subarray(i, i + len)];
      i += len;
    } else if (wire === 1) i += 8;
    else if (wire === 5) i += 4;
    else throw new Error("unsupported wire type");
  }
}

const utf8 = new TextDecoder();

// google.rpc.BadRequest { repeated FieldViolation field_violations = 1; }
// FieldViolation { string field = 1; string description = 2; }
function decodeBadRequest(bytes) {
  const out = [];
  try {
    for (const [num, v] of fields(bytes)) {
      if (num !== 1 || !(v instanceof Uint8Array)) continue;
      const fv = { field: "", description: "" };
      for (const [n, s] of fields(v)) {
        if (n === 1 && s instanceof Uint8Array) fv.field = utf8.decode(s);
        if (n === 2 && s instanceof Uint8Array) fv.description = utf8.decode(s);
      }
      out.push(fv);
    }
  } catch {
    // a damaged detail shows as the general message
  }
  return out;
}

// google.rpc.RetryInfo { google.protobuf.Duration retry_delay = 1; }
// Duration { int64 seconds = 1; int32 nanos = 2; }
function decodeRetryInfo(bytes) {
  try {
    for (const [num, v] of fields(bytes)) {
      if (num !== 1 || !(v instanceof Uint8Array)) continue;
      let seconds = 0;
      for (const [n, s] of fields(v)) {
        if (n === 1 && typeof s === "number") seconds += s;
        if (n === 2 && typeof s === "number") seconds += s / 1e9;
      }
      return seconds;
    }
  } catch {
    // unknown delay
  }
  return 0;
}
