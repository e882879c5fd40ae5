import itertools

import torch
import torch.nn.functional as F

from napari_frugalseg.core.losses import (
    PartialLoss,
    affinity_loss,
    masked_soft_dice,
    partial_cross_entropy,
    partial_loss,
)


def _batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(2, 3, 16, 16, generator=g)
    labels = torch.randint(0, 4, (2, 16, 16), generator=g)
    labels[:, :8] = 0  # top half unlabelled
    return logits, labels


def test_unlabelled_pixels_change_nothing():
    logits, labels = _batch()
    changed = logits.clone()
    changed[:, :, :8] = torch.randn(2, 3, 8, 16) * 10
    for fn in (partial_cross_entropy, masked_soft_dice, partial_loss):
        assert torch.allclose(fn(logits, labels), fn(changed, labels))


def test_gradients_only_from_labelled_pixels():
    logits, labels = _batch()
    logits.requires_grad_(True)
    partial_loss(logits, labels).backward()
    unlabelled = (labels == 0).unsqueeze(1).expand_as(logits)
    assert torch.all(logits.grad[unlabelled] == 0)
    assert logits.grad[~unlabelled].abs().sum() > 0


def test_dense_labels_give_ordinary_cross_entropy():
    logits, _ = _batch()
    dense = torch.randint(1, 4, (2, 16, 16))
    assert torch.allclose(partial_cross_entropy(logits, dense), F.cross_entropy(logits, dense - 1))


def test_dice_is_zero_for_a_perfect_prediction_and_ignores_absent_classes():
    labels = torch.zeros(1, 8, 8, dtype=torch.long)
    labels[0, :2] = 1
    labels[0, -2:] = 2  # class 3 absent
    logits = F.one_hot((labels - 1).clamp(min=0), 3).movedim(-1, 1).float() * 100
    assert masked_soft_dice(logits, labels).item() < 1e-3
    wrong = logits.flip(2)
    assert masked_soft_dice(wrong, labels).item() > 0.9


def test_no_labelled_pixel_gives_zero_with_graph():
    logits = torch.randn(1, 2, 8, 8, requires_grad=True)
    loss = PartialLoss()(logits, torch.zeros(1, 8, 8, dtype=torch.long))
    assert loss.item() == 0
    loss.backward()
    assert torch.all(logits.grad == 0)


def test_pixel_weights_scale_what_a_pixel_teaches():
    import torch

    from napari_frugalseg.core.losses import partial_loss

    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 3, 8, 8, generator=g)
    labels = torch.randint(0, 4, (2, 8, 8), generator=g)
    ones = torch.ones(2, 8, 8)
    assert torch.allclose(partial_loss(logits, labels, weights=ones), partial_loss(logits, labels))
    # a pixel of weight 0 is as if unlabelled
    w = ones.clone()
    w[0, 0, 0] = 0.0
    unl = labels.clone()
    unl[0, 0, 0] = 0
    assert torch.allclose(partial_loss(logits, labels, weights=w), partial_loss(logits, unl), atol=1e-6)


def _two_regions(size=24):
    """An image dark on the left half, bright on the right, and logits that split it at x."""
    image = torch.zeros(1, 1, size, size)
    image[..., size // 2 :] = 1.0

    def split_at(x):
        logits = torch.zeros(1, 2, size, size)
        logits[:, 0, :, :x] = 20.0
        logits[:, 1, :, x:] = 20.0
        return logits

    return image, split_at


def test_affinity_is_zero_for_one_class_and_cheapest_on_the_image_edge():
    image, split_at = _two_regions()
    assert affinity_loss(split_at(0), image).item() < 1e-6  # one class everywhere
    on_edge, off_edge = affinity_loss(split_at(12), image), affinity_loss(split_at(6), image)
    assert on_edge.item() < 1e-3 < off_edge.item()
    # labelled pixels have their own supervision: a label on every pixel leaves no term
    assert affinity_loss(split_at(6), image, torch.ones(1, 24, 24, dtype=torch.long)).item() == 0
    # 3D: the same holds along every axis
    volume = image.unsqueeze(2).expand(1, 1, 4, 24, 24)
    assert affinity_loss(split_at(12).unsqueeze(2).expand(1, 2, 4, 24, 24), volume).item() < 1e-3


def test_affinity_gradient_is_that_of_its_pairwise_sum():
    """The term's own backward (one gradient tensor for all pairs) gives autograd's gradient
    of the plain sum over pixel pairs, in 2D and 3D, with and without labels."""
    g = torch.Generator().manual_seed(0)
    for spatial, radius in [((9, 7), 2), ((4, 6, 5), 1)]:
        logits = torch.randn(2, 3, *spatial, generator=g, requires_grad=True)
        image = torch.rand(2, 2, *spatial, generator=g)
        labels = torch.randint(0, 3, (2, *spatial), generator=g)
        for lab in (None, labels):
            probs = torch.softmax(logits, 1)
            terms = []
            for offset in itertools.product(range(-radius, radius + 1), repeat=len(spatial)):
                if offset <= (0,) * len(spatial):
                    continue
                a = (...,) + tuple(slice(max(0, -o), n - max(0, o)) for o, n in zip(offset, spatial))
                b = (...,) + tuple(slice(max(0, o), n - max(0, -o)) for o, n in zip(offset, spatial))
                w = torch.exp(-((image[a] - image[b]) ** 2).sum(1) / (2 * 0.15**2))
                if lab is not None:
                    w = w * ((lab[a] == 0) | (lab[b] == 0))
                terms.append((w * (1 - (probs[a] * probs[b]).sum(1))).mean())
            reference = torch.stack(terms).mean()
            loss = affinity_loss(logits, image, lab, radius=radius)
            assert torch.allclose(loss, reference, atol=1e-6)
            (want,) = torch.autograd.grad(reference, logits)
            (got,) = torch.autograd.grad(loss, logits)
            assert torch.allclose(got, want, atol=1e-7, rtol=1e-4), (got - want).abs().max()


def test_affinity_carries_strokes_to_the_image_edge():
    """With one labelled pixel per region, cross-entropy alone teaches nothing elsewhere; the
    affinity term fills each region with its stroke's class and stops at the edge."""
    image, _ = _two_regions(12)
    labels = torch.zeros(1, 12, 12, dtype=torch.long)
    labels[0, 6, 1], labels[0, 6, 7] = 1, 2  # the edge lies between x = 5 and 6, off-centre
    truth = torch.where(image[:, 0] > 0.5, 2, 1)
    for weight, fills in [(0.0, False), (1.0, True)]:
        logits = torch.zeros(1, 2, 12, 12, requires_grad=True)
        opt = torch.optim.SGD([logits], lr=1.0)
        for _ in range(300):
            opt.zero_grad()
            loss = partial_cross_entropy(logits, labels) + weight * affinity_loss(logits, image, labels)
            loss.backward()
            opt.step()
        agree = (logits.argmax(1) + 1 == truth).float().mean().item()
        assert (agree == 1.0) == fills, (weight, agree)
