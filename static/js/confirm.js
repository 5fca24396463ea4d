// Ask before a form with data-confirm="question" is sent (abandon, delete, restore). Without
// scripts the form is simply sent, as on every other page.
document.addEventListener("submit", (event) => {
  const question = event.target.dataset && event.target.dataset.confirm;
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});
