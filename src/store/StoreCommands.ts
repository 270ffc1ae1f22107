/**
 * The nix-store command lines nsh runs, locally and on nodes, with the store settings applied.
 */
import { shellCommand } from "../util/ShellQuote.js"

/** Where a nix-store runs and which store it opens. */
export interface StoreTarget {
  /** A store URL or path for `--store`; "auto" = the default store. */
  readonly store: string
  /** Directory of the nix-store binary; "" = PATH. */
  readonly binDir: string
}

/** argv of a nix-store call against a store. */
export const nixStoreArgv = (target: StoreTarget, args: ReadonlyArray<string>): ReadonlyArray<string> => [
  target.binDir === "" ? "nix-store" : `${target.binDir.replace(/\/+$/, "")}/nix-store`,
  ...(target.store === "auto" || target.store === "" ? [] : ["--store", target.store]),
  ...args
]

/** The same call as one quoted command line, for SSH exec on a node. */
export const nixStoreCommand = (target: StoreTarget, args: ReadonlyArray<string>): string =>
  shellCommand(nixStoreArgv(target, args))

/**
 * Where a store keeps `path` on disk. `nix-store --dump` reads the file system, not the store
 * (Nix ignores `--store` there), so a store under another root (`/local/store`, `local?root=…`)
 * must be dumped at its real location.
 */
export const realPathIn = (target: StoreTarget, path: string): string => {
  const { store } = target
  // `local:///root` is how Nix 2.2x and later write a chroot store (`--store /root`) in the
  // settings it hands the hook; `local?root=/root` the older way.
  const [base = "", query = ""] = store.startsWith("/") ? [store] : store.split("?", 2)
  const root = base.startsWith("/")
    ? base
    : base.startsWith("local://") && base.length > "local://".length
    ? base.slice("local://".length)
    : base === "local"
    ? new URLSearchParams(query).get("root") ?? ""
    : ""
  return root === "" ? path : `${root.replace(/\/+$/, "")}${path}`
}
