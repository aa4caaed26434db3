// The login and register form.

import { refusal } from "./words.js";

export function setupLoginView(session) {
  const form = document.getElementById("login-form");
  const error = document.getElementById("login-error");
  const heading = document.getElementById("login-heading");
  const submit = document.getElementById("login-submit");
  const toggle = document.getElementById("login-switch");
  let registering = false;

  function setMode(reg) {
    registering = reg;
    form.classList.toggle("registering", reg);
    form.passwd2.required = reg;
    form.passwd.autocomplete = reg ? "new-password" : "current-password";
    heading.textContent = submit.textContent = reg ? "Register" : "Log in";
    toggle.textContent = reg ? "Have an account? Log in" : "New here? Register";
    error.textContent = "";
  }
  toggle.addEventListener("click", () => setMode(!registering));

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const user = form.user.value;
    const passwd = form.passwd.value;
    if (registering && passwd !== form.passwd2.value) {
      error.textContent = "The two passwords differ.";
      return;
    }
    error.textContent = "";
    submit.disabled = true;
    try {
      if (registering) {
        const r = await session.register(user, passwd);
        if (r.result !== "success") return (error.textContent = refusal(r));
      }
      const r = await session.login(user, passwd);
      if (r.result !== "success") error.textContent = refusal(r);
    } finally {
      submit.disabled = false;
    }
  });

  // Shows the form (after a logout, or a saved login that no longer works).
  return function show(reason) {
    setMode(false);
    form.passwd.value = form.passwd2.value = "";
    error.textContent = reason;
    form.user.focus();
  };
}
