"""Prints the recipe names (from the recipe files' names, one a line) that
BitBake needs to build TARGETS: their build dependencies, the runtime
providers of every package's RDEPENDS and RRECOMMENDS, and the tasks'
[depends] flags, recursively; every candidate provider, not only the best.
This is what BitBake's task data resolves before it runs or signs anything
(`bitbake -S none` fails with "Nothing RPROVIDES" on a runtime dependency of
a recipe in the graph even when no task of the provider runs), so a folder
that masks every other recipe signs the same graph.

Run by scripts/oe/oe-keep-recipes.sh inside an unmasked build environment:
    python3 oe-keep-recipes.py TARGET...
"""
import os
import shutil
import sys

sys.path.insert(0, os.path.join(os.path.dirname(shutil.which("bitbake")), "..", "lib"))
import bb.providers  # noqa: E402
import bb.tinfoil  # noqa: E402


def main(targets):
    with bb.tinfoil.Tinfoil() as tinfoil:
        tinfoil.prepare(config_only=False, quiet=2)
        cache = tinfoil.cooker.recipecaches[""]
        providers = tinfoil.get_all_providers()
        assumed = set((tinfoil.config_data.getVar("ASSUME_PROVIDED") or "").split())
        # Every variant of a recipe file (target, native, nativesdk): the
        # mask keeps or drops the file, and BitBake resolves the
        # dependencies of the variants it reaches.
        variants = {}
        for fn in cache.pkg_fn:
            variants.setdefault(fn.split(":")[-1], []).append(fn)
        seen_names, files = set(), set()
        todo = [("build", t) for t in targets]
        while todo:
            kind, name = todo.pop()
            if (kind, name) in seen_names:
                continue
            seen_names.add((kind, name))
            if kind == "build":
                best = tinfoil.find_best_provider(name)
                found = [best[3]] if best and best[3] else []
                # allProviders: PN -> [(version, file)].
                found += [fn for _, fn in providers.get(name, []) if fn not in found]
            else:
                # getRuntimeProviders: ([file...], best file).
                found = (tinfoil.get_runtime_providers(name) or [[]])[0]
            if not found and kind == "build" and name not in assumed:
                print(f"oe-keep-recipes: nothing provides {name}", file=sys.stderr)
            found = [v for fn in found for v in variants.get(fn.split(":")[-1], [fn])]
            for fn in found:
                if fn in files:
                    continue
                files.add(fn)
                todo += [("build", d) for d in cache.deps[fn]]
                for per_package in (cache.rundeps[fn], cache.runrecs[fn]):
                    for deps in per_package.values():
                        todo += [("run", d) for d in deps]
                data = tinfoil.parse_recipe_file(fn, appends=True)
                for task in data.getVar("__BBTASKS", False) or []:
                    for dep in (data.getVarFlag(task, "depends") or "").split():
                        todo.append(("build", dep.split(":")[0]))
        names = set()
        for fn in files:
            base = os.path.basename(fn.split(":")[-1])
            names.add(base[: -len(".bb")].split("_")[0])
        for name in sorted(names):
            print(name)


main(sys.argv[1:])
