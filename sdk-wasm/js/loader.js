// The loader snippet (built minified into dist/loader.js). Paste it in <head> inline, with your
// write key and collector origin in the last line, or include it as
// <script src="https://COLLECTOR/sdk/v1/loader.js" data-write-key="plw_..."></script>.
// It defines window.pulseline at once (calls are queued) and loads the SDK as an async module
// after the page has loaded, so it never delays rendering. Options (js/index.js InitOptions)
// go on window.pulseline.config before the page's load event.
;(function (w, d, writeKey, host) {
  var s = d.currentScript
  if (s && s.src) {
    writeKey = s.getAttribute('data-write-key') || writeKey
    host = s.getAttribute('data-host') || new URL(s.src).origin
  }
  var p = (w.pulseline = w.pulseline || {})
  if (p.q) return
  var q = (p.q = [])
  p.config = { writeKey: writeKey, host: host }
  'track page identify group alias flush reset optOut optIn grantConsent denyConsent'.split(' ').forEach(function (m) {
    p[m] = function () {
      q.push([m, [].slice.call(arguments)])
    }
  })
  function load() {
    var e = d.createElement('script')
    e.type = 'module'
    e.crossOrigin = 'anonymous'
    e.src = host + '/sdk/v1/pulseline.js'
    d.head.appendChild(e)
  }
  if (d.readyState === 'complete') load()
  else w.addEventListener('load', load)
})(window, document, 'WRITE_KEY', 'https://COLLECTOR')
