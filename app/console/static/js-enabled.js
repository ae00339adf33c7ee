// govuk-frontend's template marks the body before anything renders (an external file, so the
// console's Content-Security-Policy needs no inline script).
document.body.className += ' js-enabled' + ('noModule' in HTMLScriptElement.prototype ? ' govuk-frontend-supported' : '');
