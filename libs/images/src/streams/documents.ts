import { z } from "zod";
import { SourceError, errorMessage } from "./source-error";

// Shapes only as deep as the reader relies on; looseObject keeps whatever else upstream adds,
// and scalar fields are read later with simplestreams inheritance (see products.ts).
const level = z.looseObject({});
const versionSchema = z.looseObject({ items: z.record(z.string(), level).optional() });
const productSchema = z.looseObject({ versions: z.record(z.string(), versionSchema).optional() });

export const productsDocumentSchema = z.looseObject({
  format: z.literal("products:1.0"),
  content_id: z.string().optional(),
  products: z.record(z.string(), productSchema),
});
export type ProductsDocument = z.infer<typeof productsDocumentSchema>;

const indexEntrySchema = z.looseObject({
  path: z.string().optional(),
  format: z.string().optional(),
  datatype: z.string().optional(),
  products: z.array(z.string()).optional(),
});
export const indexDocumentSchema = z.looseObject({
  format: z.literal("index:1.0"),
  index: z.record(z.string(), indexEntrySchema),
});
export type IndexDocument = z.infer<typeof indexDocumentSchema>;

const utf8 = new TextDecoder("utf-8", { fatal: true });

export function decodeText(bytes: Uint8Array, shown: string): string {
  try {
    return utf8.decode(bytes);
  } catch {
    throw new SourceError(`${shown}: not UTF-8 text`);
  }
}

export function parseJson(text: string, shown: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    // V8's message quotes the text around the error: never repeat what the server sent.
    const at = /position (\d+)/.exec(errorMessage(error))?.[1];
    throw new SourceError(`${shown}: malformed JSON${at === undefined ? "" : ` at byte ${at}`}`, {
      cause: error,
    });
  }
}

function parseDocument<T>(schema: z.ZodType<T>, format: string, value: unknown, shown: string): T {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new SourceError(`${shown}: not a JSON object`);
  }
  // Checked before the shape so the most common mistake (the wrong file) gets a plain message.
  const actual = (value as { format?: unknown }).format;
  if (actual !== format) {
    throw new SourceError(
      `${shown}: wrong format ${typeof actual === "string" ? JSON.stringify(actual.slice(0, 40)) : "(none)"}, expected "${format}"`,
    );
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const issues = parsed.error.issues
      .slice(0, 3)
      .map((issue) => `${issue.path.join(".") || "(top)"}: ${issue.message}`)
      .join("; ");
    throw new SourceError(`${shown}: not a valid ${format} document (${issues})`);
  }
  return parsed.data;
}

export function parseIndexDocument(value: unknown, shown: string): IndexDocument {
  return parseDocument(indexDocumentSchema, "index:1.0", value, shown);
}

export function parseProductsDocument(value: unknown, shown: string): ProductsDocument {
  return parseDocument(productsDocumentSchema, "products:1.0", value, shown);
}
