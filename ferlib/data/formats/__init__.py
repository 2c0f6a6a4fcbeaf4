"""Dataset formats, one module per dataset family, each registered under the manifest ``loader`` it reads.

==========================  =======================  ===========================================
module                      ``loader`` (registered)  datasets (``data_manifests/<name>.yaml``)
==========================  =======================  ===========================================
:mod:`.rafdb`               ``rafdb``                RAF-DB
:mod:`.affectnet`           ``affectnet``            AffectNet (7 and 8 classes)
:mod:`.fer2013_ferplus`     ``fer2013``, ``ferplus`` FER-2013, FERPlus
:mod:`.folders`             ``folders``              folder-per-class sets: SFEW 2.0, CAER-S, FED-RO
:mod:`.kdef`                ``kdef``                 KDEF
:mod:`.ckplus`              ``ckplus``               CK+
:mod:`.ran`                 ``ran``                  RAN's Occlusion-/Pose- lists over RAF-DB, AffectNet, FERPlus
:mod:`.synthfer`            ``synthfer``             SynthFER folders (``ferlib data synth`` / ``occlude``)
==========================  =======================  ===========================================

A format is ``fn(ctx, root, split, manifest, **options) -> list[Record]`` (``ctx`` is a
:class:`~ferlib.data.formats._common.LoadContext`). A new one is a module with ``@register_format("name")``
and a line below; :func:`ferlib.data.datasets.build_dataset` looks formats up by the manifest's ``loader``.
"""

from ferlib.data.formats import affectnet, ckplus, fer2013_ferplus, folders, kdef, rafdb, ran, synthfer  # noqa: F401
from ferlib.data.formats._registry import get_format, list_formats, register_format

__all__ = ["get_format", "list_formats", "register_format"]
