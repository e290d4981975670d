"""Label conventions of the DG segmentation datasets, all mapped to the 19 Cityscapes train ids.

GTA5 labels are Cityscapes label ids; SYNTHIA stores its own class ids in the red channel of a 16-bit
PNG; Mapillary v1.2 has 66 classes, mapped to Cityscapes by their readable names with the rule of the
Rein and SoMA code bases (:func:`mapillary_name_to_cityscapes`); UrbanSyn stores train ids with 19 for
"unlabeled"; BDD100K and ACDC ship train ids already.
"""
from typing import Dict, Optional

CITYSCAPES_CLASSES = ('road', 'sidewalk', 'building', 'wall', 'fence', 'pole', 'traffic light',
                      'traffic sign', 'vegetation', 'terrain', 'sky', 'person', 'rider', 'car', 'truck',
                      'bus', 'train', 'motorcycle', 'bicycle')
TRAIN_ID = {name: i for i, name in enumerate(CITYSCAPES_CLASSES)}
IGNORE_INDEX = 255

#: Cityscapes label ids (also GTA5's) of the 19 evaluated classes; ids 0-33 exist, the rest are ignored.
CITYSCAPES_LABEL_IDS = {7: 'road', 8: 'sidewalk', 11: 'building', 12: 'wall', 13: 'fence', 17: 'pole',
                        19: 'traffic light', 20: 'traffic sign', 21: 'vegetation', 22: 'terrain', 23: 'sky',
                        24: 'person', 25: 'rider', 26: 'car', 27: 'truck', 28: 'bus', 31: 'train',
                        32: 'motorcycle', 33: 'bicycle'}
CITYSCAPES_NUM_LABEL_IDS = 34

#: SYNTHIA (RAND-CITYSCAPES) class ids 0-22. All 19 classes are mapped (the 16-class variant used for
#: SYNTHIA -> Cityscapes adaptation drops terrain, truck and train; DG evaluates all 19).
SYNTHIA_CLASSES = ('void', 'sky', 'building', 'road', 'sidewalk', 'fence', 'vegetation', 'pole', 'car',
                   'traffic sign', 'pedestrian', 'bicycle', 'motorcycle', 'parking-slot', 'road-work',
                   'traffic light', 'terrain', 'rider', 'truck', 'bus', 'train', 'wall', 'lanemarking')
SYNTHIA_TO_CITYSCAPES = {'sky': 'sky', 'building': 'building', 'road': 'road', 'sidewalk': 'sidewalk',
                         'fence': 'fence', 'vegetation': 'vegetation', 'pole': 'pole', 'car': 'car',
                         'traffic sign': 'traffic sign', 'pedestrian': 'person', 'bicycle': 'bicycle',
                         'motorcycle': 'motorcycle', 'traffic light': 'traffic light', 'terrain': 'terrain',
                         'rider': 'rider', 'truck': 'truck', 'bus': 'bus', 'train': 'train', 'wall': 'wall'}

#: Mapillary Vistas v1.2 class names (label value = index), in the order of the dataset's config_v1.2.json
#: (the same as mmseg's ``MapillaryDataset_v1``).
MAPILLARY_V12_CLASSES = (
    'Bird', 'Ground Animal', 'Curb', 'Fence', 'Guard Rail', 'Barrier', 'Wall', 'Bike Lane',
    'Crosswalk - Plain', 'Curb Cut', 'Parking', 'Pedestrian Area', 'Rail Track', 'Road', 'Service Lane',
    'Sidewalk', 'Bridge', 'Building', 'Tunnel', 'Person', 'Bicyclist', 'Motorcyclist', 'Other Rider',
    'Lane Marking - Crosswalk', 'Lane Marking - General', 'Mountain', 'Sand', 'Sky', 'Snow', 'Terrain',
    'Vegetation', 'Water', 'Banner', 'Bench', 'Bike Rack', 'Billboard', 'Catch Basin', 'CCTV Camera',
    'Fire Hydrant', 'Junction Box', 'Mailbox', 'Manhole', 'Phone Booth', 'Pothole', 'Street Light', 'Pole',
    'Traffic Sign Frame', 'Utility Pole', 'Traffic Light', 'Traffic Sign (Back)', 'Traffic Sign (Front)',
    'Trash Can', 'Bicycle', 'Boat', 'Bus', 'Car', 'Caravan', 'Motorcycle', 'On Rails', 'Other Vehicle',
    'Trailer', 'Truck', 'Wheeled Slow', 'Car Mount', 'Ego Vehicle', 'Unlabeled')


def _squash(name: str) -> str:
    return name.lower().replace(' ', '').replace('-', '')


#: Substring rules tried in this order when a Mapillary name is not a Cityscapes class name itself.
_MAPILLARY_RULES = (
    (('trafficsign', 'front', 'back'), 'traffic sign'),
    (('onrail',), 'train'),
    (('cyclist', 'rider'), 'rider'),
    (('pole', 'streetlight'), 'pole'),
    (('curb', 'pedestrianarea'), 'sidewalk'),
    (('crosswalkplain', 'parking', 'bikelane', 'servicelane', 'lanemarking'), 'road'),
)


def mapillary_name_to_cityscapes(name: str) -> Optional[str]:
    """The Cityscapes class of a Mapillary class's readable name, or ``None`` (ignored).

    The rule of the Mapillary -> Cityscapes conversion shared by Rein and SoMA: the name is lower
    cased with spaces and hyphens removed; equal to a Cityscapes name (squashed the same way, e.g.
    ``trafficlight``) it maps to that class; otherwise the first rule of ``_MAPILLARY_RULES`` with a
    matching substring decides; no match is ignored (manholes, for example)."""
    squashed = _squash(name)
    for city in CITYSCAPES_CLASSES:
        if squashed == _squash(city):
            return city
    for needles, city in _MAPILLARY_RULES:
        if any(n in squashed for n in needles):
            return city
    return None


MAPILLARY_V12_TO_CITYSCAPES = {name: city for name in MAPILLARY_V12_CLASSES
                               if (city := mapillary_name_to_cityscapes(name)) is not None}

#: UrbanSyn's semantic labels: train ids 0-18, and 19 for unlabeled pixels (ignored).
URBANSYN_UNLABELED = 19
URBANSYN_ID_TO_TRAIN_ID = {i: i for i in range(len(CITYSCAPES_CLASSES))}


def id_to_train_id(source_classes, by_name: Dict[str, str]) -> Dict[int, int]:
    """``{source id: train id}`` from a source class list and a name -> Cityscapes name map."""
    unknown = set(by_name) - set(source_classes)
    if unknown:
        raise KeyError(f'classes not in the source list: {sorted(unknown)}')
    return {source_classes.index(src): TRAIN_ID[dst] for src, dst in by_name.items()}


GTA5_ID_TO_TRAIN_ID = {i: TRAIN_ID[name] for i, name in CITYSCAPES_LABEL_IDS.items()}
SYNTHIA_ID_TO_TRAIN_ID = id_to_train_id(SYNTHIA_CLASSES, SYNTHIA_TO_CITYSCAPES)
MAPILLARY_V12_ID_TO_TRAIN_ID = id_to_train_id(MAPILLARY_V12_CLASSES, MAPILLARY_V12_TO_CITYSCAPES)
