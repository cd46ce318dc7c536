// The sign-in panel both pages share: paste an API key once; a bad or revoked key
// gets a clear message; sign-out forgets the token.
import { describeError } from "./session.js";
import { $, announce } from "./util.js";

export function wireSignIn(session, { onSignedIn, onSignedOut, accept }) {
  const form = $("#signin-form");
  const input = $("#api-key");
  const error = $("#signin-error");
  const panel = $("#signin");
  const app = $("#app");
  const who = $("#who");
  session.accept = accept || null;

  function show() {
    const signedIn = session.signedIn;
    panel.hidden = signedIn;
    app.hidden = !signedIn;
    $("#signout").hidden = !signedIn;
    who.textContent = signedIn
      ? (session.agentId ? `Agent ${session.agentId}` : `Signed in as ${session.role}`) : "";
    if (!signedIn && session.signOutReason) {
      error.textContent = session.signOutReason;
      error.hidden = false;
    }
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.hidden = true;
    const key = input.value.trim();
    if (!key) {
      error.textContent = "Paste an API key first.";
      error.hidden = false;
      input.focus();
      return;
    }
    try {
      await session.signIn(key);
      input.value = "";
      session.signOutReason = null;
    } catch (err) {
      error.textContent = describeError(err);
      error.hidden = false;
      input.select();
    }
  });

  $("#signout").addEventListener("click", () => {
    session.signOut(null);
    error.hidden = true;
    announce("Signed out");
  });

  let wasSignedIn = null;
  session.onChange(() => {
    show();
    if (session.signedIn && wasSignedIn !== true) onSignedIn();
    if (!session.signedIn && wasSignedIn !== false) {
      onSignedOut();
      input.focus();
    }
    wasSignedIn = session.signedIn;
  });
  show();
  wasSignedIn = session.signedIn;
  if (session.signedIn) onSignedIn();
  else input.focus();
}
