// VistaRAG chat. Chainlit opens its side panel with every side element of the chat whenever an
// answer adds one; here the panel opens only when the user clicks a citation.
(() => {
  let lastClick = 0;
  let shown = null;
  document.addEventListener("click", (event) => {
    if (event.target.closest && event.target.closest("a.element-link")) lastClick = Date.now();
  }, true);
  const check = () => {
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
  new MutationObserver(check).observe(document.documentElement, {
    childList: true, subtree: true, characterData: true,
  });
})();
