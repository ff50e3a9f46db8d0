// Validates an AsyncAPI document with the AsyncAPI project's own parser, Avro payloads included.
// Usage: node validate.mjs FILE. Prints every diagnostic; exits 1 on any error or warning, 0 otherwise.
import { readFile } from "node:fs/promises";
import { Parser, DiagnosticSeverity } from "@asyncapi/parser";
import { AvroSchemaParser } from "@asyncapi/avro-schema-parser";

const path = process.argv[2];
if (!path) {
  console.error("usage: node validate.mjs FILE");
  process.exit(2);
}

const avro = AvroSchemaParser();
const parser = new Parser();
parser.registerSchemaParser(avro);

const problems = [];
const { document, diagnostics } = await parser.parse(await readFile(path, "utf8"), { source: path });
const severities = { [DiagnosticSeverity.Error]: "error", [DiagnosticSeverity.Warning]: "warning" };
for (const d of diagnostics.filter((d) => d.severity in severities)) {
  problems.push(`${severities[d.severity]}: ${d.code}: ${d.path.length ? d.path.join(".") : "(document)"}: ${d.message}`);
}

let checked = 0;
if (document !== undefined) {
  // For AsyncAPI 3 documents the parser only checks an Avro payload's shape; the Avro schema parser's own
  // validation (avsc: named types resolve, unions, defaults) runs here, on every message's original payload.
  const formats = new Set(avro.getMimeTypes());
  for (const message of document.allMessages()) {
    const payload = message.json().payload ?? {};
    if (!formats.has(payload.schemaFormat)) continue;
    const where = ["messages", message.id(), "payload"];
    for (const d of await avro.validate({ data: payload["x-parser-original-payload"], path: where })) {
      problems.push(`error: avro: ${where.join(".")}: ${d.message}`);
    }
    checked += 1;
  }
}

for (const problem of problems) console.log(problem);
if (document === undefined || problems.length > 0) {
  console.log(`${path}: ${problems.length} problem(s)${document === undefined ? "; the document did not parse" : ""}`);
  process.exit(1);
}
const counts = [
  `${document.channels().length} channels`,
  `${document.operations().length} operations`,
  `${document.allMessages().length} messages (${checked} Avro payloads checked)`,
];
console.log(`${path}: valid AsyncAPI ${document.version()}: ${counts.join(", ")}`);
