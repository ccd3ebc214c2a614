'use strict'
// Validates atmls's lexicon files, and records, with the official @atproto/lexicon package
// (the PDS stores records of lexicons it does not know without validating them).
//
//   node validate.js <lexicon-dir> < records.json
//
// records.json: [{"collection": "<nsid>", "record": <record as ATProto JSON>}, ...]
// Prints one JSON object: {"lexicons": [ids], "results": [{"ok": true} | {"ok": false, "error": "..."}]}
// Exits 1 (with the reason on stderr) if a lexicon file is invalid: wrong schema, an id that
// does not match its path, or a ref that does not resolve.
const fs = require('node:fs')
const path = require('node:path')
const { Lexicons, parseLexiconDoc, jsonToLex } = require('@atproto/lexicon')

const fail = (msg) => {
  process.stderr.write(`lexicon error: ${msg}\n`)
  process.exit(1)
}

const dir = process.argv[2]
if (!dir) fail('usage: node validate.js <lexicon-dir> < records.json')

const files = []
const walk = (d) => {
  for (const e of fs.readdirSync(d, { withFileTypes: true })) {
    const p = path.join(d, e.name)
    if (e.isDirectory()) walk(p)
    else if (e.name.endsWith('.json')) files.push(p)
  }
}
walk(dir)
if (files.length === 0) fail(`no lexicon files under ${dir}`)

const lex = new Lexicons()
const ids = []
for (const file of files.sort()) {
  let doc
  try {
    doc = parseLexiconDoc(JSON.parse(fs.readFileSync(file, 'utf8')))
  } catch (e) {
    fail(`${file}: ${e.message}`)
  }
  const expected = path.relative(dir, file).replace(/\.json$/, '').split(path.sep).join('.')
  if (doc.id !== expected) fail(`${file}: id ${doc.id} does not match its path (${expected})`)
  lex.add(doc)
  ids.push(doc.id)
}

// Every ref (and union member) must name a def that exists.
const checkRefs = (node, docUri) => {
  if (Array.isArray(node)) return node.forEach((n) => checkRefs(n, docUri))
  if (!node || typeof node !== 'object') return
  const refs = node.type === 'ref' ? [node.ref] : node.type === 'union' ? node.refs : []
  for (const ref of refs) {
    if (!lex.getDef(lex.resolveLexUri(docUri, ref))) fail(`${docUri}: unresolved ref ${ref}`)
  }
  for (const v of Object.values(node)) checkRefs(v, docUri)
}
for (const doc of lex) checkRefs(doc.defs, `lex:${doc.id}`)

const input = fs.readFileSync(0, 'utf8')
const items = input.trim() ? JSON.parse(input) : []
const results = items.map(({ collection, record }) => {
  try {
    lex.assertValidRecord(collection, jsonToLex(record))
    return { ok: true }
  } catch (e) {
    return { ok: false, error: String(e && e.message ? e.message : e) }
  }
})
process.stdout.write(JSON.stringify({ lexicons: ids, results }) + '\n')
