pulseline.track('CSP Event', { strict: true })
