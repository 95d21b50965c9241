#!/usr/bin/env node
// CID oracle for tests/results/test_cid.py.
//
// Usage: node tests/results/cid_oracle.mjs [--hidden] PATH
//        node tests/results/cid_oracle.mjs --serve   (JSON lines on stdin/stdout)
//
// Prints the CID that `ipfs add -r --cid-version=1 PATH` (kubo defaults)
// gives for PATH (a directory or a single file), computed with the reference
// JS UnixFS importer (ipfs-unixfs-importer, from the repo's node_modules).
//
// kubo defaults with --cid-version=1, reproduced here:
//   raw leaves (implied by CIDv1), fixed-size chunker of 262144 bytes,
//   balanced layout with at most 174 links per node, single-chunk files
//   reduced to their raw leaf, sha2-256, flat directories (links sorted by
//   name; HAMT above the 256 KiB "links-bytes" estimate), symlinks stored as
//   UnixFS symlink nodes (not followed), and hidden entries (names starting
//   with ".") skipped unless --hidden (kubo's `--hidden`/`-H`).
import fs from 'node:fs'
import path from 'node:path'
import readline from 'node:readline'
import { importer } from 'ipfs-unixfs-importer'
import { fixedSize } from 'ipfs-unixfs-importer/chunker'
import { balanced } from 'ipfs-unixfs-importer/layout'
import { MemoryBlockstore } from 'blockstore-core/memory'

const ROOT = 'root'

function * walk (abs, rel, hidden) {
  const st = fs.lstatSync(abs)
  if (st.isSymbolicLink()) {
    yield { path: rel, link: fs.readlinkSync(abs) }
  } else if (st.isFile()) {
    yield { path: rel, content: fs.readFileSync(abs) }
  } else if (st.isDirectory()) {
    yield { path: rel }
    for (const name of fs.readdirSync(abs).sort()) {
      if (!hidden && name.startsWith('.')) continue
      yield * walk(path.join(abs, name), `${rel}/${name}`, hidden)
    }
  } else {
    throw new Error(`unsupported file type: ${abs}`)
  }
}

const options = {
  cidVersion: 1,
  rawLeaves: true,
  reduceSingleLeafToSelf: true,
  chunker: fixedSize({ chunkSize: 262144 }),
  layout: balanced({ maxChildrenPerNode: 174 }),
  shardSplitThresholdBytes: 262144,
  shardSplitStrategy: 'links-bytes',
  wrapWithDirectory: false
}

async function cidOf (target, hidden) {
  const blockstore = new MemoryBlockstore()
  let root = null
  for await (const entry of importer(walk(path.resolve(target), ROOT, hidden), blockstore, options)) {
    if (entry.path === ROOT) root = entry
  }
  if (root == null) throw new Error('importer produced no root entry')
  return root.cid.toString()
}

const args = process.argv.slice(2)
if (args.includes('--serve')) {
  // One JSON request per line: {"path": "...", "hidden": false};
  // one JSON answer per line: {"cid": "..."} or {"error": "..."}.
  const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity })
  for await (const line of lines) {
    if (line.trim() === '') continue
    let answer
    try {
      const request = JSON.parse(line)
      answer = { cid: await cidOf(request.path, Boolean(request.hidden)) }
    } catch (err) {
      answer = { error: String(err?.message ?? err) }
    }
    process.stdout.write(JSON.stringify(answer) + '\n')
  }
} else {
  const target = args.filter(a => a !== '--hidden')[0]
  if (target == null) {
    console.error('usage: cid_oracle.mjs [--hidden] PATH | --serve')
    process.exit(2)
  }
  console.log(await cidOf(target, args.includes('--hidden')))
}
