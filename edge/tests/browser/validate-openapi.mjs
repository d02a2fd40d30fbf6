// Validates an OpenAPI document against the official OpenAPI JSON schemas.
//
//   node validate-openapi.mjs <openapi.json>
import { readFile } from "node:fs/promises";
import { Validator } from "@seriousme/openapi-schema-validator";

const document = JSON.parse(await readFile(process.argv[2], "utf8"));
const validator = new Validator();
const result = await validator.validate(document);
console.log(JSON.stringify({ version: validator.version, ...result }));
process.exit(result.valid ? 0 : 1);
