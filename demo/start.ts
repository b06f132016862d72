console.log('stdb-rx: the demo comes with a later issue; run `npm run devserver` for the dev server.');
