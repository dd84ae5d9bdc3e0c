// Google's `web-vitals` (attribution build) as a module of its own, `dist/web-vitals.js`:
// pulseline.js imports it only when Web Vitals are on, so a page with `webVitals: false` never
// downloads it, and starting the core never waits for it (README "Size").
export { onCLS, onFCP, onINP, onLCP, onTTFB } from 'web-vitals/attribution'
