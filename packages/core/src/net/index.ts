/** The SSRF guard: URL checks after DNS, a dispatcher that checks again at connect time. */
export * from './ssrf.js';
