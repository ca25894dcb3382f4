"""Options of the image-folder kind: every option with its default, and the two presets' values.

Brain-MRI is the 4-class Kaggle release (Nickparvar), downloaded by hand; PlantVillage the 38-class
colour set of spMohanty's repository at a pinned commit. Kept apart from :mod:`.image_folder` (fetch and
prepare) so that the config checks can read the options without importing image code.
"""

from __future__ import annotations

from typing import Any

PLANTVILLAGE_COMMIT = "40789680ba2e6382608dba47b397688fcbd0d04a"
PLANTVILLAGE_CLASSES = (
    "Apple___Apple_scab",
    "Apple___Black_rot",
    "Apple___Cedar_apple_rust",
    "Apple___healthy",
    "Blueberry___healthy",
    "Cherry_(including_sour)___Powdery_mildew",
    "Cherry_(including_sour)___healthy",
    "Corn_(maize)___Cercospora_leaf_spot Gray_leaf_spot",
    "Corn_(maize)___Common_rust_",
    "Corn_(maize)___Northern_Leaf_Blight",
    "Corn_(maize)___healthy",
    "Grape___Black_rot",
    "Grape___Esca_(Black_Measles)",
    "Grape___Leaf_blight_(Isariopsis_Leaf_Spot)",
    "Grape___healthy",
    "Orange___Haunglongbing_(Citrus_greening)",
    "Peach___Bacterial_spot",
    "Peach___healthy",
    "Pepper,_bell___Bacterial_spot",
    "Pepper,_bell___healthy",
    "Potato___Early_blight",
    "Potato___Late_blight",
    "Potato___healthy",
    "Raspberry___healthy",
    "Soybean___healthy",
    "Squash___Powdery_mildew",
    "Strawberry___Leaf_scorch",
    "Strawberry___healthy",
    "Tomato___Bacterial_spot",
    "Tomato___Early_blight",
    "Tomato___Late_blight",
    "Tomato___Leaf_Mold",
    "Tomato___Septoria_leaf_spot",
    "Tomato___Spider_mites Two-spotted_spider_mite",
    "Tomato___Target_Spot",
    "Tomato___Tomato_Yellow_Leaf_Curl_Virus",
    "Tomato___Tomato_mosaic_virus",
    "Tomato___healthy",
)

# Every option of the kind and its default for a new dataset name; presets override some of them.
GENERIC: dict[str, Any] = {
    "url": [],
    "filename": None,
    "archive": None,
    "folder": None,
    "sha256": None,
    "allow_unverified": False,
    "resolution": 64,
    "test_size": 0.2,
    "split_seed": 0,
    "train_limit": None,
    "test_limit": None,
    "limit_seed": 0,
    "manual_dir": None,
    "timeout": 30.0,
    "archive_limits": None,
    "root": "",
    "layout": "single_folder",
    "train_folder": "train",
    "test_folder": "test",
    "classes": None,
}

DEFAULTS: dict[str, dict[str, Any]] = {
    "brain-mri": {
        **GENERIC,
        "url": [],
        "filename": "brain-tumor-mri-dataset.zip",
        "root": "",
        "layout": "split_folders",
        "train_folder": "Training",
        "test_folder": "Testing",
        "classes": ["glioma", "meningioma", "notumor", "pituitary"],
    },
    "plantvillage": {
        **GENERIC,
        "url": [f"https://github.com/spMohanty/PlantVillage-Dataset/archive/{PLANTVILLAGE_COMMIT}.zip"],
        "filename": f"PlantVillage-Dataset-{PLANTVILLAGE_COMMIT}.zip",
        "root": f"PlantVillage-Dataset-{PLANTVILLAGE_COMMIT}/raw/color",
        "layout": "single_folder",
        "train_folder": None,
        "test_folder": None,
        "classes": list(PLANTVILLAGE_CLASSES),
    },
}

# Where a person finds the archive when it cannot be downloaded unattended.
_SOURCE_PAGES = {
    "brain-mri": (
        "https://www.kaggle.com/datasets/masoudnickparvar/brain-tumor-mri-dataset (Kaggle needs a login; "
        "or run `kaggle datasets download -d masoudnickparvar/brain-tumor-mri-dataset`)"
    ),
    "plantvillage": "https://github.com/spMohanty/PlantVillage-Dataset (Code > Download ZIP)",
}
