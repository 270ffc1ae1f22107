/**
 * The Config service: nsh's settings, loaded once per process from the nsh.conf files.
 */
import { Context, Layer } from "effect"
import type { LoadedSettings } from "./Settings.js"

/** Loaded, decoded settings (with their provenance). Fails at layer construction on a bad nsh.conf. */
export class Config extends Context.Tag("nsh/Config")<Config, LoadedSettings>() {
  /** A Config holding fixed settings, for tests and for programs that loaded them already. */
  static readonly fromLoaded = (loaded: LoadedSettings) => Layer.succeed(Config, loaded)
}
