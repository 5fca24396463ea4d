// The copy button beside a value shown once (the new API token on the profile page).
document.addEventListener("click", async (event) => {
  const button = event.target.closest("[data-copy-target]");
  if (!button) return;
  const field = document.getElementById(button.dataset.copyTarget);
  const status = button.parentElement.querySelector(".copy-status");
  field.select();
  try {
    await navigator.clipboard.writeText(field.value);
    status.textContent = "Copied.";
  } catch {
    // No clipboard permission (plain HTTP, older browsers): the text is selected for Ctrl-C.
    status.textContent = "Selected: press Ctrl-C (or ⌘-C) to copy.";
  }
});
