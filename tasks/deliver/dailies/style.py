"""The review page's stylesheet and its one small script (conveniences only)."""

STYLE = """
:root { color-scheme: dark; --bg: #121317; --panel: #1b1d22; --line: #2c2f37;
  --text: #e6e8ee; --dim: #9aa0ab; --accent: #5b8def; --good: #4cae7a; --warn: #e0a83c;
  --bad: #e0605b; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--text);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; }
main { max-width: 1280px; margin: 0 auto; padding: 20px 24px 60px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 32px 0 12px; border-bottom: 1px solid var(--line);
  padding-bottom: 6px; }
h3 { font-size: 16px; margin: 0; }
h4 { font-size: 12px; text-transform: uppercase; letter-spacing: .06em; color: var(--dim);
  margin: 16px 0 6px; }
a { color: #8fb3ff; }
.sub { color: var(--dim); margin: 0 0 12px; }
.animatic { background: #3a2f12; border: 1px solid var(--warn); color: #f4d58a;
  padding: 8px 12px; border-radius: 6px; margin: 10px 0 16px; }
.film video { display: block; width: 100%; height: min(62vh, 620px); background: #000;
  border-radius: 6px; object-fit: contain; }
.timeline img { width: 100%; height: auto; display: block; border-radius: 6px; }
.downloads { display: flex; flex-wrap: wrap; gap: 8px 16px; margin: 10px 0 0; padding: 0;
  list-style: none; }
.cast { display: flex; flex-wrap: wrap; gap: 16px; }
.cast-member { margin: 0; width: 220px; }
.cast-member img { width: 220px; border-radius: 6px; }
.cast-member audio { width: 220px; }
.strip { display: flex; gap: 12px; overflow-x: auto; padding: 4px 2px 12px; }
.card { flex: 0 0 236px; background: var(--panel); border: 1px solid var(--line);
  border-radius: 8px; padding: 8px; color: var(--text); text-decoration: none; }
.card:hover, .card:focus { border-color: var(--accent); }
.card .thumbs { display: grid; grid-template-columns: 1fr 1fr; gap: 4px; }
.card img, .frames img { width: 100%; height: auto; display: block; border-radius: 4px;
  background: #000; }
.card .name { font-weight: 600; margin: 6px 0 2px; }
.card .meta { color: var(--dim); font-size: 12px; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px;
  font-weight: 600; background: #2a2d35; color: var(--text); margin-right: 4px; }
.badge.good { background: #1f3b2c; color: #8fe0b3; }
.badge.warn { background: #43361a; color: #f4d58a; }
.badge.bad { background: #472322; color: #ffb1ad; }
.badge.cached { background: #24303f; color: #a9c6ff; }
.badge.fresh { background: #2f2a3f; color: #cdb8ff; }
.notes li { margin: 4px 0; }
.notes .where { color: var(--dim); font-family: ui-monospace, monospace; font-size: 12px; }
.sequence { background: var(--panel); border: 1px solid var(--line); border-radius: 10px;
  padding: 16px; margin: 16px 0; scroll-margin-top: 12px; }
.sequence:target { border-color: var(--accent); }
.sequence > header { display: flex; flex-wrap: wrap; align-items: center; gap: 8px;
  margin-bottom: 12px; }
.sequence > header h3 { margin-right: 8px; }
.seq-grid { display: grid; grid-template-columns: minmax(260px, 4fr) 7fr; gap: 20px; }
@media (max-width: 900px) { .seq-grid { grid-template-columns: 1fr; } }
.seq-grid video { display: block; width: 100%; height: 320px; background: #000;
  border-radius: 6px; object-fit: contain; }
.frames { display: grid; grid-template-columns: 1fr 1fr; gap: 8px; margin: 8px 0 0; }
.frames figure { margin: 0; }
figcaption { color: var(--dim); font-size: 12px; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px; margin: 0; }
dl.facts dt { color: var(--dim); }
dl.facts dd { margin: 0; }
ol.scenes { margin: 0; padding-left: 20px; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid var(--line);
  vertical-align: top; }
th { color: var(--dim); font-weight: 500; }
details { margin: 8px 0; }
summary { cursor: pointer; color: #b9c3d6; }
pre { background: #0c0d10; border: 1px solid var(--line); border-radius: 6px; padding: 8px;
  margin: 4px 0; white-space: pre-wrap; word-break: break-all; font-size: 12px; }
.copy { display: flex; gap: 8px; align-items: flex-start; }
.copy pre { flex: 1; }
button { background: #2a3550; color: var(--text); border: 1px solid #3b4a6e; border-radius: 6px;
  padding: 5px 10px; cursor: pointer; font: inherit; font-size: 12px; }
button:hover { background: #34446a; }
.hint { color: var(--dim); font-size: 12px; margin: 4px 0; }
"""

SCRIPT = """
document.querySelectorAll("button[data-copy]").forEach(function (button) {
  button.addEventListener("click", function () {
    var text = document.getElementById(button.dataset.copy).textContent;
    var done = function () { button.textContent = "Copied"; };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { select(button); });
    } else { select(button); }
  });
});
function select(button) {
  var range = document.createRange();
  range.selectNodeContents(document.getElementById(button.dataset.copy));
  var selection = window.getSelection();
  selection.removeAllRanges();
  selection.addRange(range);
  button.textContent = "Selected: press Ctrl+C";
}
document.querySelectorAll("a[data-play]").forEach(function (link) {
  link.addEventListener("click", function () {
    var video = document.getElementById(link.dataset.play);
    if (video) { video.play().catch(function () {}); }
  });
});
document.querySelectorAll("a[data-seek]").forEach(function (link) {
  link.addEventListener("click", function (event) {
    var film = document.getElementById("film");
    if (!film) { return; }
    event.preventDefault();
    film.currentTime = parseFloat(link.dataset.seek);
    film.scrollIntoView({behavior: "smooth"});
    film.play().catch(function () {});
  });
});
"""
