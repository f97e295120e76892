using Pip.Torch.Training;
using static TorchSharp.torch;

namespace Pip.Torch.Tests.Training;

public sealed class PackedSequencesTests
{
    [Fact]
    public void Ctor_Stream_CutsIntoOverlappingByOneSequences()
    {
        var packed = new PackedSequences(Enumerable.Range(0, 11).ToArray(), 4);
        packed.Count.Should().Be(2); // (11 − 1) / 4: tokens 0…4 and 4…8; 9, 10 are dropped
        packed[0].ToArray().Should().Equal(0, 1, 2, 3, 4);
        packed[1].ToArray().Should().Equal(4, 5, 6, 7, 8);
        packed.TargetTokenCount.Should().Be(8);
    }

    [Fact]
    public void CreateBatch_ShiftsTargetsByOne()
    {
        var packed = new PackedSequences(Enumerable.Range(10, 13).ToArray(), 3);
        using var batch = packed.CreateBatch([2, 0], CPU);
        batch.InputIds.shape.Should().Equal(2, 3);
        batch.InputIds.data<long>().ToArray().Should().Equal(16, 17, 18, 10, 11, 12);
        batch.Targets.data<long>().ToArray().Should().Equal(17, 18, 19, 11, 12, 13);
        batch.TokenCount.Should().Be(6);
    }

    [Fact]
    public void Ctor_TooFewTokens_Throws()
    {
        var act = () => new PackedSequences([1, 2, 3], 3);
        act.Should().Throw<ArgumentException>().WithMessage("*3 tokens are too few*");
    }
}
