using static TorchSharp.torch;

namespace Pip.Torch.Tests;

public sealed class TorchPrecisionTests
{
    [Fact]
    public void Resolve_ExplicitType_IsKept()
    {
        TorchPrecision.Resolve(ScalarType.BFloat16, ScalarType.Float32).Should().Be(ScalarType.BFloat16);
        TorchPrecision.Resolve(ScalarType.Float32, ScalarType.BFloat16).Should().Be(ScalarType.Float32);
    }

    [Fact]
    public void Resolve_Automatic_KeepsFloat32AndChoosesBetweenStoredTypeAndFloat32()
    {
        TorchPrecision.Resolve(null, ScalarType.Float32).Should().Be(ScalarType.Float32);
        TorchPrecision.IsFast(ScalarType.Float32).Should().BeTrue();
        var expected = TorchPrecision.IsFast(ScalarType.BFloat16) ? ScalarType.BFloat16 : ScalarType.Float32;
        TorchPrecision.Resolve(null, ScalarType.BFloat16).Should().Be(expected);
    }
}
