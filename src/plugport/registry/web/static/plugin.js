// A copy button for the install command; without script the command is plain, selectable text.
(function () {
  "use strict";
  var button = document.getElementById("copy-install");
  if (!button || !navigator.clipboard) {
    return;
  }
  button.hidden = false;
  button.addEventListener("click", function () {
    navigator.clipboard.writeText(button.getAttribute("data-copy")).then(function () {
      button.textContent = "Copied";
      window.setTimeout(function () {
        button.textContent = "Copy";
      }, 2000);
    });
  });
})();
