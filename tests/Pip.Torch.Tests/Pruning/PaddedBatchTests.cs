using Pip.Torch.Pruning;
using static TorchSharp.torch;

namespace Pip.Torch.Tests.Pruning;

public sealed class PaddedBatchTests
{
    [Fact]
    public void SequenceLosses_DifferentLengths_EqualEachSequencesOwnMeanNll()
    {
        using var lm = PruningFixtures.Create(seed: 71);
        IReadOnlyList<int>[] sequences = [[0, 10, 20, 30, 40, 50], [0, 7, 8], [0, 9, 9, 9, 9]];
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        using var batch = PaddedBatch.Create(sequences, lm.Module.Device);
        batch.Ids.shape.Should().Equal(3, 6);
        batch.Lengths.Should().Equal(6, 3, 5);
        var losses = batch.SequenceLosses(lm.Module.Logits(batch.Ids)).data<float>().ToArray();

        for (int b = 0; b < sequences.Length; b++)
        {
            var ids = tensor(sequences[b].Select(i => (long)i).ToArray(), [1, sequences[b].Count]);
            var expected = nn.functional.cross_entropy(lm.Module.Logits(ids)[0, ..^1], ids[0, 1..]).item<float>();
            losses[b].Should().BeApproximately(expected, 1e-5f, $"sequence {b}");
        }
    }

    [Fact]
    public void Create_SequenceOfOneToken_Throws()
    {
        var act = () => PaddedBatch.Create([[1, 2], [3]], CPU);
        act.Should().Throw<ArgumentException>().WithMessage("*two tokens*");
    }

    [Fact]
    public void Create_NoSequence_Throws()
    {
        var act = () => PaddedBatch.Create([], CPU);
        act.Should().Throw<ArgumentException>();
    }
}
