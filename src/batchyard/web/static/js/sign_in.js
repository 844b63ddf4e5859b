// Sign in: check the token against the API, then keep it in this tab's sessionStorage.
import { ApiError, api, safeNext, saveToken, showNotice } from "./api.js";

const form = document.getElementById("sign-in-form");
const input = document.getElementById("token");
const error = document.getElementById("token-error");
const flashed = sessionStorage.getItem("batchyard.flash");
if (flashed) {
  sessionStorage.removeItem("batchyard.flash");
  showNotice(flashed, "info");
}
input.focus();

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const token = input.value.trim();
  error.textContent = "";
  input.removeAttribute("aria-invalid");
  if (!token) {
    error.textContent = "Enter your token.";
    input.setAttribute("aria-invalid", "true");
    input.focus();
    return;
  }
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  try {
    saveToken(token, await api("/me", { token }));
    location.assign(safeNext(new URLSearchParams(location.search).get("next")));
  } catch (failure) {
    error.textContent =
      failure instanceof ApiError && failure.status === 401
        ? "That token is not valid (or was revoked or expired)."
        : `Could not sign in: ${failure.message}`;
    input.setAttribute("aria-invalid", "true");
    input.focus();
  } finally {
    button.disabled = false;
  }
});
