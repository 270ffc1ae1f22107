# Renders an attrset as nsh.conf text (nix.conf syntax, one `key = value` line per key, sorted):
# lists are space-joined, bools are true/false, attrsets (slurm-extra-submission-params) are
# one-line JSON, null leaves the key out. Uses builtins only, so it can be tested without nixpkgs.
let
  inherit (builtins)
    attrNames
    concatStringsSep
    filter
    isAttrs
    isBool
    isFloat
    isInt
    isList
    isString
    match
    toJSON
    typeOf
    ;

  scalar =
    key: value:
    if isBool value then
      (if value then "true" else "false")
    else if isString value || isInt value || isFloat value then
      toString value
    else
      throw "nsh.conf: setting '${key}' holds a ${typeOf value}, which nsh.conf cannot express; use a string, number, bool, list or (for JSON settings) an attrset.";

  render =
    key: value:
    if isList value then
      concatStringsSep " " (map (scalar key) value)
    else if isAttrs value then
      toJSON value
    else
      scalar key value;

  # nix.conf has no quoting: `#` starts a comment anywhere and a line break ends the value.
  checked =
    key: text:
    if match "[^#\n]*" text == null then
      throw "nsh.conf: the value of '${key}' contains '#' or a line break, which nix.conf syntax cannot hold ('#' starts a comment)."
    else
      text;

  checkedKey =
    key:
    if match "[A-Za-z0-9][A-Za-z0-9._-]*" key == null then
      throw "nsh.conf: '${key}' is not a valid setting name (letters, digits, '.', '_' and '-' only)."
    else
      key;

  line = settings: key: "${checkedKey key} = ${checked key (render key settings.${key})}\n";
in
settings:
concatStringsSep "" (
  map (line settings) (filter (key: settings.${key} != null) (attrNames settings))
)
