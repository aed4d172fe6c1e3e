// ES module entry point: `import connect from "/static/ccphost/connect-streams.mjs"`.
import "./connect-streams.js";

export default globalThis.connect;
