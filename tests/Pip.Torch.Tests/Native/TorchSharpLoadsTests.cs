using TorchSharp;
using static TorchSharp.torch;

namespace Pip.Torch.Tests.Native;

public sealed class TorchSharpLoadsTests
{
    [Fact]
    public void MatmulAndBackward_InTestOutputFolder_Compute()
    {
        using var scope = NewDisposeScope();
        var a = tensor(new float[] { 1, 2, 3, 4 }, new long[] { 2, 2 }, requires_grad: true);
        var b = tensor(new float[] { 5, 6, 7, 8 }, new long[] { 2, 2 });
        var y = a.matmul(b).sum();
        y.backward();
        y.item<float>().Should().Be(1 * 5 + 2 * 7 + 1 * 6 + 2 * 8 + 3 * 5 + 4 * 7 + 3 * 6 + 4 * 8);
        a.grad!.data<float>().ToArray().Should().Equal(11, 15, 11, 15);
    }
}
