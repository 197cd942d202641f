"""The layers of docs/architecture.md: no module of lotr_gluon/, heatmap_baseline/ or tools/ imports a module of a
higher layer, the two model packages (``lotr_gluon.models``, ``heatmap_baseline``) never import each other, and
no project import stands inside a function. Imports are read from the source (ast); importing ``a.b.c`` also
runs the ``__init__`` of ``a.b``, so a package's layer counts too (unless the importing module is inside that
package, whose ``__init__`` has then already run)."""
import ast
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = ("lotr_gluon", "heatmap_baseline")

#: (module pattern, layer): ``name.*`` = the package ``name`` and everything in it, else one module. The same
#: table is written in docs/architecture.md ("Layers"); test_architecture_states_this_table keeps the two equal.
#: 1 data, 2 shared blocks, 3 models, 4 engine, 5 deployment, 6 reports, 7 tools.
LAYERS = [
    ("lotr_gluon", 1), ("lotr_gluon.errors", 1), ("lotr_gluon.runlock", 1), ("lotr_gluon.runtime", 1),
    ("lotr_gluon.config.*", 1), ("lotr_gluon.data.*", 1), ("lotr_gluon.metrics", 1), ("lotr_gluon.losses", 1),
    ("lotr_gluon.optim", 1), ("lotr_gluon.detectors", 1), ("lotr_gluon.detection_cache", 1),
    ("lotr_gluon.pretrained", 1), ("lotr_gluon.files", 1), ("lotr_gluon.markdown", 1),
    ("lotr_gluon.blocks.*", 2),
    ("lotr_gluon.models.*", 3), ("heatmap_baseline.*", 3),
    ("lotr_gluon.model_zoo", 4), ("lotr_gluon.build", 4), ("lotr_gluon.trainer", 4), ("lotr_gluon.evaluate", 4),
    ("lotr_gluon.vis", 4), ("lotr_gluon.flops", 4), ("lotr_gluon.cli", 4),
    ("lotr_gluon.predictor", 5), ("lotr_gluon.export", 5), ("lotr_gluon.benchmark", 5), ("lotr_gluon.peers", 5),
    ("lotr_gluon.tables.*", 6), ("lotr_gluon.compare", 6), ("lotr_gluon.records", 6),
    ("heatmap_baseline.blocks_report", 6),
    ("tools.*", 7),
]
#: the two model packages on the same shared blocks: neither imports the other
MODEL_PACKAGES = ("lotr_gluon.models", "heatmap_baseline")


def layer_of(module, table=LAYERS):
    """Layer of a dotted module name: the exact entry, else the longest ``package.*`` entry; None if unlisted."""
    best, depth = None, -1
    for pat, layer in table:
        if pat == module:
            return layer
        if pat.endswith(".*"):
            pkg = pat[:-2]
            if (module == pkg or module.startswith(pkg + ".")) and len(pkg) > depth:
                best, depth = layer, len(pkg)
    return best


def _is_module(dotted):
    path = os.path.join(ROOT, *dotted.split("."))
    return os.path.isfile(path + ".py") or os.path.isfile(os.path.join(path, "__init__.py"))


def imported_modules(source, module, is_package=False, is_module=_is_module):
    """``[(lineno, dotted module)]`` of the project modules that ``source`` (the text of ``module``) imports,
    at any depth of the syntax tree; ``from p import name`` counts ``p.name`` when that is a module."""
    package = module if is_package else module.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            for a in node.names:
                sub = target + "." + a.name
                out.append((node.lineno, sub if is_module(sub) else target))
    return [(n, m) for n, m in out if m.split(".")[0] in PACKAGES + ("tools",)]


def violations(module, source, is_package=False, table=LAYERS, is_module=_is_module):
    """Imports of ``module`` that reach a higher layer: ``["module:line imports target (layer a -> b)"]``."""
    own = layer_of(module, table)
    mine = module.split(".") if is_package else module.split(".")[:-1]
    own_packages = {".".join(mine[:i]) for i in range(1, len(mine) + 1)}
    bad = []
    for line, target in imported_modules(source, module, is_package, is_module):
        parts = target.split(".")
        # the target and every package whose __init__ the import runs (not those this module is inside)
        reached = [".".join(parts[:i]) for i in range(1, len(parts) + 1)]
        for t in reached:
            if t in own_packages and t != target:
                continue
            lt = layer_of(t, table)
            msg = "%s:%d imports %s (layer %d -> %d)" % (module, line, t, own, lt or 0)
            if lt is not None and lt > own and msg not in bad:
                bad.append(msg)
    return bad


def project_modules():
    """``[(dotted name, path, is_package)]`` of every module of the two packages and of tools/."""
    out = []
    for pkg in PACKAGES + ("tools",):
        for d, _, files in os.walk(os.path.join(ROOT, pkg)):
            for f in sorted(files):
                if not f.endswith(".py"):
                    continue
                rel = os.path.relpath(os.path.join(d, f), ROOT)[:-3].split(os.sep)
                is_pkg = rel[-1] == "__init__"
                out.append((".".join(rel[:-1] if is_pkg else rel), os.path.join(d, f), is_pkg))
    return out


def test_every_module_has_a_layer():
    missing = [m for m, _, _ in project_modules() if layer_of(m) is None]
    assert not missing, "add these modules to docs/architecture.md 'Layers' and tests/test_layers.py LAYERS: %s" % missing


def test_no_import_runs_from_a_lower_layer_to_a_higher_one():
    bad = []
    for module, path, is_pkg in project_modules():
        with open(path, encoding="utf-8") as f:
            bad += violations(module, f.read(), is_pkg)
    assert not bad, "\n".join(bad)


def test_checker_finds_upward_imports_at_any_depth():
    """Hand-made sources: the checker reports an import inside a function, a relative import, an import of a
    submodule whose package sits higher (a hidden two-way dependency), and nothing else."""
    src = ("import numpy\n"
           "from lotr_gluon.errors import ModelError\n"
           "def f():\n"
           "    from lotr_gluon.trainer import Trainer\n"
           "class A:\n"
           "    def g(self):\n"
           "        import lotr_gluon.models.lotr\n"
           "from ..blocks import layers\n")
    modules = {"lotr_gluon.trainer", "lotr_gluon.models", "lotr_gluon.models.lotr", "lotr_gluon.blocks",
               "lotr_gluon.blocks.layers", "lotr_gluon.errors"}
    bad = violations("heatmap_baseline.model", src, table=LAYERS, is_module=modules.__contains__)
    assert bad == ["heatmap_baseline.model:4 imports lotr_gluon.trainer (layer 3 -> 4)"]
    # inside its own package, the package __init__ has already run: a sibling import is no violation
    assert violations("lotr_gluon.models.lotr", "from .heads import x\nfrom . import transformer\n",
                      is_module=modules.union({"lotr_gluon.models.heads", "lotr_gluon.models.transformer"})
                      .__contains__) == []
    # relative imports resolve against the package: layer 2 reaching layer 3
    assert violations("lotr_gluon.blocks.layers", "from ..models import lotr\n", is_module=modules.__contains__) \
        == ["lotr_gluon.blocks.layers:1 imports lotr_gluon.models (layer 2 -> 3)",
            "lotr_gluon.blocks.layers:1 imports lotr_gluon.models.lotr (layer 2 -> 3)"]


def test_layer_of_uses_the_longest_package_entry():
    assert layer_of("lotr_gluon") == 1 and layer_of("lotr_gluon.data.formats.jd") == 1
    assert layer_of("lotr_gluon.models") == 3 and layer_of("lotr_gluon.model_zoo") == 4
    assert layer_of("heatmap_baseline.codec") == 3 and layer_of("heatmap_baseline.blocks_report") == 6
    assert layer_of("lotr_gluon.newmodule") is None


def _architecture_table():
    with open(os.path.join(ROOT, "docs", "architecture.md"), encoding="utf-8") as f:
        text = f.read()
    m = re.search(r"^## Layers\n(.*?)(?=^#|\Z)", text, re.S | re.M)
    assert m, "docs/architecture.md has no '## Layers' section"
    table = []
    for layer, names in re.findall(r"^\s*(\d)\. \*\*[^*]+\*\*: (.*)$", m.group(1), re.M):
        names = re.sub(r"\([^)]*\)", "", names)  # remarks in parentheses name no entry
        table += [(n, int(layer)) for n in re.findall(r"`([\w.*]+)`", names)]
    return table


def test_architecture_states_this_table():
    assert sorted(_architecture_table()) == sorted(LAYERS)


def model_package_violations(module, source, is_package=False, is_module=_is_module):
    """Imports by the model code of one model package of the other: ``["module:line imports target"]``."""
    mine = [p for p in MODEL_PACKAGES if module == p or module.startswith(p + ".")]
    if not mine or layer_of(module) != 3:
        return []
    others = [p for p in MODEL_PACKAGES if p != mine[0]]
    return ["%s:%d imports %s" % (module, line, target)
            for line, target in imported_modules(source, module, is_package, is_module)
            if any(target == p or target.startswith(p + ".") for p in others)]


def test_the_two_model_packages_never_import_each_other():
    bad = []
    for module, path, is_pkg in project_modules():
        with open(path, encoding="utf-8") as f:
            bad += model_package_violations(module, f.read(), is_pkg)
    assert not bad, "\n".join(bad)
    assert model_package_violations("lotr_gluon.models.lotr", "from heatmap_baseline.upsampling import h\n",
                                    is_module=lambda m: m == "heatmap_baseline.upsampling") == [
        "lotr_gluon.models.lotr:1 imports heatmap_baseline.upsampling"]
    assert model_package_violations("heatmap_baseline.blocks_report", "import lotr_gluon.models\n") == []


def function_imports(source, module, is_package=False, is_module=_is_module):
    """``[(lineno, dotted module)]`` of the project imports that stand inside a function or method."""
    inner = []
    for fn in ast.walk(ast.parse(source)):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            inner += [n for n in ast.walk(fn) if isinstance(n, (ast.Import, ast.ImportFrom))]
    lines = {n.lineno for n in inner}
    return [(n, m) for n, m in imported_modules(source, module, is_package, is_module) if n in lines]


#: tools whose ``--threads`` sets OMP_NUM_THREADS, which must happen before MXNet (and so the project) is imported
IMPORT_AFTER_THREADS = ("tools.bench_train", "tools.benchmark")


def test_no_project_import_inside_a_function():
    """Project imports stand at the top of a module, where the layers can be read; a function-level import to
    dodge an import cycle hides a cycle that the layers forbid."""
    bad = []
    for module, path, is_pkg in project_modules():
        if module in IMPORT_AFTER_THREADS:
            continue
        with open(path, encoding="utf-8") as f:
            bad += ["%s:%d imports %s inside a function" % (module, n, m)
                    for n, m in function_imports(f.read(), module, is_pkg)]
    assert not bad, "\n".join(bad)
    src = "import numpy\nfrom lotr_gluon.errors import E\ndef f():\n    import json\n    from .build import x\n"
    assert function_imports(src, "lotr_gluon.cli", is_module=lambda m: False) == [(5, "lotr_gluon.build")]


def test_heatmap_baseline_runs_without_the_lotr_models():
    """At run time too: importing heatmap_baseline does not import lotr_gluon.models, nor the other way round;
    the model zoo imports both at its top in either order."""
    code = ("import sys, heatmap_baseline, heatmap_baseline.vector, heatmap_baseline.upsampling\n"
            "assert not any(m == 'lotr_gluon.models' or m.startswith('lotr_gluon.models.') for m in sys.modules)\n"
            "import lotr_gluon.model_zoo as Z\n"
            "assert Z.MODELS['earp_heatmap'].make is heatmap_baseline.EarpHeatmapNet\n"
            "print('ok')\n")
    code2 = ("import sys, lotr_gluon.models\n"
             "assert not any(m.startswith('heatmap_baseline') for m in sys.modules)\n"
             "print('ok')\n")
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=ROOT)
    for c in (code, code2):
        out = subprocess.run([sys.executable, "-c", c], cwd=ROOT, env=env, capture_output=True, text=True,
                             timeout=120)
        assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]
