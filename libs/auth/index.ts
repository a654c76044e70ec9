export * from "./admin-keys.ts";
export * from "./principal.ts";
