// SPDX-License-Identifier: MIT
'use strict';
// The Piscina mode's task: qrcode's default PNG data URL, on a worker thread.
const QRCode = require('qrcode');

module.exports = (text) => QRCode.toDataURL(text);
