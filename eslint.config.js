import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["**/node_modules/", "**/dist/", "data/", "apps/web/src/**/*.svelte"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: {
        process: "readonly",
        console: "readonly",
        URL: "readonly",
        setTimeout: "readonly",
        clearTimeout: "readonly",
        setInterval: "readonly",
        clearInterval: "readonly",
        Buffer: "readonly",
        AbortController: "readonly",
        AbortSignal: "readonly",
        TextEncoder: "readonly",
        TextDecoder: "readonly",
        fetch: "readonly",
        window: "readonly",
        document: "readonly",
        localStorage: "readonly",
        queueMicrotask: "readonly",
        structuredClone: "readonly",
        performance: "readonly",
      },
    },
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "@typescript-eslint/no-explicit-any": "error",
    },
  },
  {
    files: ["libs/images/src/**/*.ts"],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            "koa",
            "koa-*",
            "@koa/*",
            "socket.io*",
            "typeorm",
            "better-sqlite3",
            "pg",
            "redis",
            "@socket.io/*",
          ],
        },
      ],
    },
  },
  {
    // The presentation entry is bundled by the dashboard: only the domain's pure modules, no Node built-ins.
    files: ["libs/images/src/present/**/*.ts"],
    ignores: ["**/*.test.ts"],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            "node:*",
            "undici",
            "openpgp",
            "zod",
            "../streams*",
            "../store*",
            "../plan*",
            "../catalogue*",
          ],
        },
      ],
    },
  },
  {
    // The dashboard takes the domain through its browser-safe entry only.
    files: ["apps/web/src/**/*.ts", "apps/web/src/**/*.svelte"],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          paths: [
            { name: "@bootstream/images", allowTypeImports: true, message: "use @bootstream/images/present" },
            {
              name: "@bootstream/protocol",
              allowTypeImports: true,
              message: "use @bootstream/protocol/client",
            },
          ],
        },
      ],
    },
  },
);
