// The Web page's country map (docs/dashboard-web.md, "Countries"): a choropleth of visitors
// by country, drawn by jsVectorMap (vendored, collector/build.rs). Clicking a country filters
// the page as its table row does. Loaded only when the Web page shows countries.
import { cssVar, fmt, h } from '/assets/ui.js';

let loading = null;
let current = null;

// jsVectorMap's UMD build sets globalThis.jsVectorMap; its world map registers itself there,
// so the two load in order.
function load() {
  loading ||= (async () => {
    document.head.append(h('link', { rel: 'stylesheet', href: '/assets/jsvectormap.min.css' }));
    await import('/assets/jsvectormap.min.js');
    await import('/assets/jsvectormap-world.js');
    return globalThis.jsVectorMap;
  })();
  return loading;
}

// A country's fill: the accent colour, more opaque the more visitors (at least a quarter, so a
// country with one visitor still shows).
function fill(visitors, max) {
  const alpha = Math.round(255 * (0.25 + 0.75 * (visitors / max)));
  return `${cssVar('--accent')}${alpha.toString(16).padStart(2, '0')}`;
}

/// Draws the map of `rows` ([{value: 'DE', visitors, count}]) into `box`; `hrefFor(code)` is
/// the page with that country's filter added.
export async function countryMap(box, rows, hrefFor) {
  const JsVectorMap = await load();
  if (!box.isConnected) return;
  current?.destroy();
  current = null;
  const byCode = new Map(rows.filter((r) => /^[A-Z]{2}$/.test(r.value)).map((r) => [r.value, r]));
  const max = Math.max(1, ...[...byCode.values()].map((r) => r.visitors));
  const attributes = {};
  for (const [code, r] of byCode) attributes[code] = fill(r.visitors, max);
  box.replaceChildren();
  const map = new JsVectorMap({
    selector: box,
    map: 'world',
    backgroundColor: 'transparent',
    zoomButtons: false,
    zoomOnScroll: false,
    regionStyle: {
      initial: { fill: cssVar('--line'), stroke: cssVar('--panel'), strokeWidth: 0.5, fillOpacity: 1 },
      hover: { fillOpacity: 0.75, cursor: 'pointer' },
    },
    series: { regions: [{ attribute: 'fill', attributes }] },
    onRegionTooltipShow(_event, tooltip, code) {
      const r = byCode.get(code);
      tooltip.text(`${tooltip.text()}: ${r ? fmt(r.visitors) : 0} visitor${r?.visitors === 1 ? '' : 's'}`);
    },
    onRegionClick(_event, code) {
      if (byCode.has(code)) location.hash = hrefFor(code);
    },
  });
  current = map;
  // Countries with visitors say so to assistive technology and tests; the table stays the
  // accessible view.
  for (const [code, r] of byCode) {
    const path = box.querySelector(`path[data-code="${code}"]`);
    path?.setAttribute('data-visitors', String(r.visitors));
  }
  const onResize = () => {
    if (!box.isConnected || current !== map) { removeEventListener('resize', onResize); return; }
    // A box without size (mid-layout) would give the map an infinite scale.
    if (box.offsetWidth && box.offsetHeight) map.updateSize();
  };
  addEventListener('resize', onResize);
}
