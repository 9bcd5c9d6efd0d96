"""Step 2 of the offline ensemble comparison (see ``train_members.py``): for start seeds 0 .. S-1
and K in the given sizes, score the networks of seeds s .. s+K-1 together on the start seed's test
and validation sets, by the mean of their reconstructions (``recon``: what
``ReconstructionEnsemble`` does) and by the mean of their anomaly maps (``map``), K = 1 being one
network; threshold = the 95th percentile of the ensemble's validation-normal scores. Prints one
JSON row per (task, model, start, K, mode); the rows of the 2026-12-02 run are in
``docs/accuracy/ensemble_offline.json``.

    python benchmarks/ensemble_offline/score_ensembles.py mamanet_compact 1,3,5 5
"""
import json
import logging
import os
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
torch.set_num_threads(2); logging.disable(logging.WARNING)
from sklearn.metrics import roc_auc_score
from benchmarks.accuracy import _task_overrides, _brain_test
from mama_monai.workflows.splits import prepare_splits
from mama_monai.workflows.config import workflow_config
from mama_monai.engines import score_items, AnomalyMap, anomaly_map_args
from mama_monai.workflows.metrics_report import report_items
OUT = Path(os.environ.get("ENSEMBLE_DIR", "/tmp/ens"))
nets = sys.argv[1].split(","); Ks = [int(k) for k in sys.argv[2].split(",")]; starts = range(int(sys.argv[3]))
rows = []
for task in ("lidc", "brain"):
  for net in nets:
    for s in starts:
        over = _task_overrides(task, 64, 300, 50); over["seed"] = s
        parser = workflow_config(net, overrides=over)
        splits = prepare_splits(parser)
        test = _brain_test(splits["test"], s) if task == "brain" else splits["test"]
        val = splits["val"]
        scoring = parser.get_parsed_content("scoring")
        am = AnomalyMap(2, **anomaly_map_args(scoring))
        outs = {}
        for K in Ks:
            members = list(range(s, s + K))
            if not all((OUT / f"{task}_{net}_{m}.pt").exists() for m in members): continue
            for m in members:
                if m not in outs:
                    nw = torch.load(OUT / f"{task}_{net}_{m}.pt", weights_only=False)["net"].eval()
                    outs[m] = (score_items(nw, am, test, torch.device("cpu")), score_items(nw, am, val, torch.device("cpu")))
            for mode in (["single"] if K == 1 else ["map", "recon"]):
                res = {}
                for name, items, idx in (("test", test, 0), ("val", val, 1)):
                    o = [outs[m][idx] for m in members]
                    x = torch.as_tensor(o[0]["image"])
                    if mode == "recon":
                        pred = np.mean([q["pred"] for q in o], 0); mp_ = am.map(x, torch.as_tensor(pred)).numpy()
                    else:
                        pred = np.mean([q["pred"] for q in o], 0); mp_ = np.mean([q["map"] for q in o], 0)
                    sc = am.score(torch.as_tensor(mp_)).numpy()
                    res[name] = dict(score=sc, label=o[0]["label"].astype(int), map=mp_, image=o[0]["image"], pred=pred)
                thr = float(np.quantile(res["val"]["score"][res["val"]["label"] == 0], 0.95))
                t = res["test"]; rep = report_items(t, scoring, thr, test, seed=s)
                row = dict(task=task, net=net, start=s, K=K, mode=mode,
                           auroc=roc_auc_score(t["label"], t["score"]), pixel=rep["pixel_auroc"],
                           val_auroc=roc_auc_score(res["val"]["label"], res["val"]["score"]),
                           val_mse=float(((res["val"]["image"] - res["val"]["pred"])**2)[res["val"]["label"] == 0].mean()),
                           sens=rep["image"]["sensitivity"], spec=rep["image"]["specificity"])
                if task == "brain":
                    for kind in ("bright", "dark"):
                        keep = np.array([it.get("lesion") in ("none", kind) for it in test])
                        row[kind] = roc_auc_score(t["label"][keep], t["score"][keep])
                rows.append(row); print(json.dumps(row), flush=True)
json.dump(rows, open(OUT / f"rows_{'_'.join(nets)}.json", "w"))
