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

    [Fact]
    public void CpuBFloat16Support_OnLinux_FollowsTheCpuFlags()
    {
        if (!OperatingSystem.IsLinux())
        {
            TorchPrecision.CpuBFloat16Support().Should().BeNull();
            return;
        }

        string flags = File.ReadLines("/proc/cpuinfo").First(l => l.StartsWith("flags", StringComparison.Ordinal) || l.StartsWith("Features", StringComparison.Ordinal));
        bool expected = flags.Split(' ').Intersect(["avx512_bf16", "amx_bf16", "avx512bw", "bf16"]).Any();
        TorchPrecision.CpuBFloat16Support().Should().Be(expected);
        TorchPrecision.IsFast(ScalarType.BFloat16).Should().Be(expected);
    }
}
