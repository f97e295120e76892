global using Pip.Tests.Fakes;
