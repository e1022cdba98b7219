// VistaRAG chat.
// - Chainlit opens its side panel with every side element of the chat whenever an answer adds
//   one; here the panel opens only when the user clicks a citation.
// - An inline marker [n] is a link of its own (an element named "[n]", same view as its chip);
//   a click on it opens the chip listed as "[n] name" under the answer instead, so the side view
//   is titled with what it shows ("report.pdf p. 4"), not "[n]".
// - The welcome screen says in one line what VistaRAG does and what to try.
(() => {
  const MARKER = /^\[\d+\]$/;
  const WELCOME =
    "Ask about your documents, screenshots and videos: every answer cites its sources, and a " +
    "click on a source shows the page, region or moment. Paste a screenshot (Ctrl+V) to ask " +
    "about it, drop files to add them, or try a question below.";
  let lastClick = 0;
  let shown = null;

  // the chip on the Sources line "[n] name" of the same answer
  const chipFor = (link) => {
    const text = link.textContent.trim();
    const message = link.closest(".ai-message") || document;
    for (const item of message.querySelectorAll("li")) {
      const links = item.querySelectorAll("a.element-link");
      if (links.length > 1 && links[0].textContent.trim() === text) return links[1];
    }
    return null;
  };

  document.addEventListener("click", (event) => {
    const link = event.target.closest && event.target.closest("a.element-link");
    if (!link) return;
    lastClick = Date.now();
    const chip = MARKER.test(link.textContent.trim()) ? chipFor(link) : null;
    if (chip) {
      event.preventDefault();
      event.stopPropagation();
      chip.click();
    }
  }, true);

  const closeUnasked = () => {
    const title = document.getElementById("side-view-title");
    const now = title ? title.textContent : null;
    if (now === shown) return;
    shown = now;
    if (title && Date.now() - lastClick > 2000) {
      const back = title.querySelector("button");
      if (back) back.click();
      shown = null;
    }
  };

  const welcome = () => {
    const logo = document.querySelector("#welcome-screen img.logo");
    if (!logo || document.getElementById("vistarag-welcome")) return;
    const line = document.createElement("p");
    line.id = "vistarag-welcome";
    line.textContent = WELCOME;
    logo.insertAdjacentElement("afterend", line);
  };

  new MutationObserver(() => {
    closeUnasked();
    welcome();
  }).observe(document.documentElement, { childList: true, subtree: true, characterData: true });
})();
