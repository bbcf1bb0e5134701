export async function demoCommand(argv: string[]): Promise<number> {
  const { runDemo } = await import("../demo/demo");
  return runDemo(argv);
}
